/**
 * `tcpLinesServer`: listens on a TCP port and reads lines from every client that connects.
 *
 * @module
 */
import { z } from "../../actors/_deps.ts";
import { parseConfig } from "../../actors/_config.ts";
import type { StreamRecord } from "../../actors/record.ts";
import { defineSource, type SourceDefinition } from "../../actors/stage.ts";
import type { StageOptions, StageRef } from "../../actors/stage_ref.ts";
import { abortable, LineReader } from "./_line_reader.ts";

/** Options of {@linkcode tcpLinesServer}. */
export interface TcpLinesServerOptions {
  /** Interface to listen on. Default `"127.0.0.1"`. */
  hostname?: string;
  /** Port to listen on. */
  port: number;
  /** Most clients at once; further connections are closed at once. Default 64. */
  maxClients?: number;
  /** A line longer than this (in UTF-16 units) is cut. Default 1 MiB. */
  maxLineBytes?: number;
}

const serverConfig: z.ZodType<TcpLinesServerOptions> = z.object({
  hostname: z.string().min(1).optional(),
  port: z.number().int().safe().min(1).max(65_535),
  maxClients: z.number().int().safe().positive().optional(),
  maxLineBytes: z.number().int().safe().positive().optional(),
}).strict();

interface Client {
  conn: Deno.TcpConn;
  reader: LineReader;
  peer: string;
  /** The read in flight (kept across pulls: its lines are taken by a later pull). */
  pending?: Promise<{ client: Client; lines: string[] | null }>;
}

/**
 * The `tcpLinesServer` source definition (config {@linkcode TcpLinesServerOptions}). Prefer
 * the {@linkcode tcpLinesServer} builder.
 *
 * @example
 * ```ts
 * import { tcpLinesServerStage } from "@sluice/sluice";
 * import assert from "node:assert/strict";
 *
 * assert.equal(tcpLinesServerStage.name, "tcpLinesServer");
 * ```
 */
export const tcpLinesServerStage: SourceDefinition<string, TcpLinesServerOptions> = defineSource({
  name: "tcpLinesServer",
  config: serverConfig,
  open(config, ctx) {
    const hostname = config.hostname ?? "127.0.0.1";
    const listener = Deno.listen({ hostname, port: config.port, transport: "tcp" });
    const clients = new Set<Client>();
    let wake: (() => void) | undefined;
    let closed = false;
    void (async () => {
      for await (const conn of listener) {
        if (closed || clients.size >= (config.maxClients ?? 64)) {
          conn.close();
          continue;
        }
        const addr = conn.remoteAddr;
        const reader = new LineReader((buf) => conn.read(buf), config.maxLineBytes);
        clients.add({ conn, reader, peer: `${addr.hostname}:${addr.port}` });
        wake?.();
      }
    })().catch(() => {/* the listener was closed */});
    const read = (c: Client) =>
      c.pending ??= c.reader.lines(Infinity).then((lines) => ({ client: c, lines }));
    const close = () => {
      closed = true;
      try {
        listener.close();
      } catch { /* already closed */ }
      for (const c of clients) {
        try {
          c.conn.close();
        } catch { /* already closed */ }
      }
      clients.clear();
    };
    // A stage the runtime kills is not closed: the kill closes the port and the clients.
    ctx.signal.addEventListener("abort", close, { once: true });
    return {
      async pull({ max, signal }) {
        if (closed) return null;
        const arrived = new Promise<undefined>((r) => (wake = () => r(undefined)));
        let timer: ReturnType<typeof setTimeout> | undefined;
        const timeout = new Promise<undefined>((r) => (timer = setTimeout(r, 250, undefined)));
        const first = await abortable(
          Promise.race([...[...clients].map(read), arrived, timeout]),
          signal,
        );
        clearTimeout(timer);
        wake = undefined;
        if (!first) return { records: [] };
        const { client, lines } = first;
        client.pending = undefined;
        if (lines === null) {
          clients.delete(client);
          client.conn.close();
          return { records: [] };
        }
        const now = ctx.now();
        const records: StreamRecord<string>[] = lines.map((value) => ({
          value,
          ts: now,
          headers: { source: `tcp://${client.peer}` },
        }));
        if (records.length > max) {
          // Keep the rest for the next pull, in order.
          const rest = records.splice(max);
          client.pending = Promise.resolve({ client, lines: rest.map((r) => r.value) });
        }
        return { records };
      },
      close,
    };
  },
});

/**
 * Listens on `hostname:port` and reads newline-separated text from every client that connects
 * (for example log shippers, or `nc 127.0.0.1 9999`), one string record per line, with header
 * `source: "tcp://<peer>"`.
 *
 * - **Pull-driven**: each pull takes the lines of one client that has data; at most one read
 *   (64 KiB) per client is in flight, so a backed-up pipeline stops reading and TCP flow control
 *   makes the clients block. Lines from one client stay in order.
 * - **Single instance**: it owns the port; run it with parallelism 1.
 * - **Delivery**: at-most-once (TCP has no offsets to replay from).
 * - **Permissions**: the worker gets `net` to `hostname:port` only.
 *
 * Use `tcpLinesSource` to connect to a server instead (Flink's `socketTextStream`).
 *
 * @param options See {@linkcode TcpLinesServerOptions}.
 * @param stageOptions Stage options.
 * @returns A source reference.
 * @throws {ConfigError} When the options are invalid.
 *
 * @example
 * ```ts
 * import { tcpLinesServer } from "@sluice/sluice";
 * import assert from "node:assert/strict";
 *
 * assert.deepEqual(tcpLinesServer({ port: 9999 }).options?.permissions, {
 *   net: ["127.0.0.1:9999"],
 * });
 * ```
 */
export function tcpLinesServer(
  options: TcpLinesServerOptions,
  stageOptions?: StageOptions,
): StageRef<never, string> {
  parseConfig(tcpLinesServerStage, stageOptions?.name ?? tcpLinesServerStage.name, options);
  const net = [`${options.hostname ?? "127.0.0.1"}:${options.port}`];
  return {
    kind: "source",
    module: import.meta.url,
    export: "tcpLinesServerStage",
    config: options,
    options: { permissions: { net }, ...stageOptions },
  };
}
