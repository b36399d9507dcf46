/**
 * `tcpLinesSource`: connects to a TCP server and reads lines, like Flink's
 * `socketTextStream(host, port)`.
 *
 * @module
 */
import { z } from "../../actors/_deps.ts";
import { parseConfig } from "../../actors/_config.ts";
import { defineSource, type SourceDefinition } from "../../actors/stage.ts";
import type { StageOptions, StageRef } from "../../actors/stage_ref.ts";
import { sleep } from "../../actors/_sleep.ts";
import { LineReader, waitLines } from "./_line_reader.ts";

/** Options of {@linkcode tcpLinesSource}. */
export interface TcpLinesSourceOptions {
  /** Server host. Default `"127.0.0.1"`. */
  host?: string;
  /** Server port. */
  port: number;
  /** Reconnect (with backoff) when the connection fails or the server closes it; else end. Default `true`. */
  reconnect?: boolean;
  /** First reconnect delay, ms; doubles per failed attempt, with jitter. Default 100. */
  backoffMs?: number;
  /** Longest reconnect delay, ms. Default 5000. */
  maxBackoffMs?: number;
  /** A line longer than this (in UTF-16 units) is cut. Default 1 MiB. */
  maxLineBytes?: number;
}

const tcpConfig: z.ZodType<TcpLinesSourceOptions> = z.object({
  host: z.string().min(1).optional(),
  port: z.number().int().safe().min(1).max(65_535),
  reconnect: z.boolean().optional(),
  backoffMs: z.number().positive().finite().optional(),
  maxBackoffMs: z.number().positive().finite().optional(),
  maxLineBytes: z.number().int().safe().positive().optional(),
}).strict();

/**
 * The `tcpLines` source definition (config {@linkcode TcpLinesSourceOptions}). Prefer the
 * {@linkcode tcpLinesSource} builder.
 *
 * @example
 * ```ts
 * import { tcpLinesSourceStage } from "@sluice/sluice";
 * import assert from "node:assert/strict";
 *
 * assert.equal(tcpLinesSourceStage.name, "tcpLines");
 * ```
 */
export const tcpLinesSourceStage: SourceDefinition<string, TcpLinesSourceOptions> = defineSource({
  name: "tcpLines",
  config: tcpConfig,
  open(config, ctx) {
    const hostname = config.host ?? "127.0.0.1";
    const origin = `tcp://${hostname}:${config.port}`;
    const reconnect = config.reconnect ?? true;
    const base = config.backoffMs ?? 100;
    const cap = config.maxBackoffMs ?? 5000;
    let conn: Deno.TcpConn | undefined;
    let reader: LineReader | undefined;
    let failures = 0;
    let ended = false;
    const drop = () => {
      try {
        conn?.close();
      } catch { /* already closed */ }
      conn = undefined;
      reader = undefined;
    };
    // A stage the runtime kills is not closed: the kill drops the connection, for good.
    ctx.signal.addEventListener("abort", () => {
      ended = true;
      drop();
    }, { once: true });
    return {
      async pull({ max, signal }) {
        if (ended) return null;
        if (!conn) {
          if (failures > 0) {
            const delay = Math.min(cap, base * 2 ** (failures - 1));
            await sleep(delay * (0.5 + Math.random() / 2), signal);
            if (signal.aborted) return null;
          }
          try {
            conn = await Deno.connect({ hostname, port: config.port });
            if (ended) {
              drop(); // killed while it connected
              return null;
            }
            reader = new LineReader((buf) => conn!.read(buf), config.maxLineBytes);
          } catch (e) {
            failures++;
            if (!reconnect) {
              throw new Error(`Cannot connect to ${origin}: ${(e as Error).message}`, { cause: e });
            }
            return { records: [] };
          }
        }
        const lines = await waitLines(reader!, max, signal);
        if (lines === null) {
          drop();
          if (!reconnect) ended = true;
          else failures++;
          return ended ? null : { records: [] };
        }
        if (lines.length > 0) failures = 0;
        const now = ctx.now();
        return { records: lines.map((value) => ({ value, ts: now, headers: { source: origin } })) };
      },
      close() {
        drop();
      },
    };
  },
});

/**
 * Connects to `host:port` as a client and reads newline-separated text, one string record per
 * line (`\r\n` or `\n`), with header `source: "tcp://host:port"` and the read time as event
 * time — like Flink's `socketTextStream("localhost", 9999)` (try `nc -lk 9999`).
 *
 * - **Pull-driven**: the socket is read only when the pipeline pulls. A backed-up pipeline stops
 *   reading, the kernel buffers fill, and TCP flow control makes the sender block.
 * - **Reconnect**: when the connection fails or the server closes it, the source reconnects
 *   with exponential backoff and jitter (`backoffMs` doubling up to `maxBackoffMs`), forever;
 *   with `reconnect: false` it ends when the server closes (and fails if it cannot connect).
 * - **Delivery**: TCP has no offsets to replay from: lines in flight when the process dies are
 *   lost (at-most-once). Use Kafka or files when that matters.
 * - **Permissions**: the worker gets `net` to `host:port` only.
 *
 * To accept connections instead (clients push lines to Sluice), use `tcpLinesServer`.
 *
 * @param options See {@linkcode TcpLinesSourceOptions}.
 * @param stageOptions Stage options.
 * @returns A source reference.
 * @throws {ConfigError} When the options are invalid.
 *
 * @example
 * ```ts
 * import { tcpLinesSource } from "@sluice/sluice";
 * import assert from "node:assert/strict";
 *
 * const ref = tcpLinesSource({ host: "127.0.0.1", port: 9999 });
 * assert.deepEqual(ref.options?.permissions, { net: ["127.0.0.1:9999"] });
 * ```
 */
export function tcpLinesSource(
  options: TcpLinesSourceOptions,
  stageOptions?: StageOptions,
): StageRef<never, string> {
  parseConfig(tcpLinesSourceStage, stageOptions?.name ?? tcpLinesSourceStage.name, options);
  const net = [`${options.host ?? "127.0.0.1"}:${options.port}`];
  return {
    kind: "source",
    module: import.meta.url,
    export: "tcpLinesSourceStage",
    config: options,
    options: { permissions: { net }, ...stageOptions },
  };
}
