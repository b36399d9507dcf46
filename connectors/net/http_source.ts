/**
 * `httpSource`: an HTTP endpoint (`Deno.serve`) that turns POSTed JSON or NDJSON into records,
 * answering only once the pipeline took them, and 503 when it has no room.
 *
 * @module
 */
import { z } from "../../actors/_deps.ts";
import { parseConfig } from "../../actors/_config.ts";
import type { StreamRecord } from "../../actors/record.ts";
import { defineSource, type SourceDefinition } from "../../actors/stage.ts";
import type { StageOptions, StageRef } from "../../actors/stage_ref.ts";
import { bearerOk, hmacChecker, type HttpAuth } from "./_http_auth.ts";
import { Intake, type Outcome } from "./_intake.ts";
import { readBody } from "./_read_body.ts";

export type { HttpAuth };

/** Options of {@linkcode httpSource}. */
export interface HttpSourceOptions {
  /** Port to listen on. */
  port: number;
  /** Interface to listen on. Default `"127.0.0.1"`. */
  hostname?: string;
  /** The one path accepted (others get 404). Default `"/"`. */
  path?: string;
  /**
   * `{ bearer: token }` (header `Authorization: Bearer <token>`) or
   * `{ hmac: { secret, header } }` (header, default `x-signature`, holds the hex HMAC-SHA256 of the
   * raw body, optionally prefixed `sha256=`). Failures get 401. Default: no authentication.
   */
  auth?: HttpAuth;
  /** Largest body accepted, bytes; larger ones get 413. Default 1 MiB. */
  maxBodyBytes?: number;
  /** `json`: one record, or one per element of a top-level array; `ndjson`: one per line. Default `"json"`. */
  format?: "json" | "ndjson";
  /**
   * When to answer: `"accepted"` (default): 202 once a pull took the records;
   * `"processed"`: 200 once every record was written by the sinks (or dead-lettered).
   */
  ackMode?: "accepted" | "processed";
  /** Records that may wait for a pull; a request that does not fit gets 503 at once. Default 10 000. */
  queueRecords?: number;
  /** A request not taken by a pull within this gets 503, ms. Default 5000. */
  acceptTimeoutMs?: number;
  /** `Retry-After` of 503 answers, seconds. Default 1. */
  retryAfterSec?: number;
}

const httpSourceConfig: z.ZodType<HttpSourceOptions> = z.object({
  port: z.number().int().safe().min(1).max(65_535),
  hostname: z.string().min(1).optional(),
  path: z.string().startsWith("/").optional(),
  auth: z.union([
    z.object({ bearer: z.string().min(1) }).strict(),
    z.object({
      hmac: z.object({ secret: z.string().min(1), header: z.string().min(1).optional() }).strict(),
    }).strict(),
  ]).optional(),
  maxBodyBytes: z.number().int().safe().positive().optional(),
  format: z.enum(["json", "ndjson"]).optional(),
  ackMode: z.enum(["accepted", "processed"]).optional(),
  queueRecords: z.number().int().safe().positive().optional(),
  acceptTimeoutMs: z.number().positive().finite().optional(),
  retryAfterSec: z.number().int().safe().min(0).optional(),
}).strict();

/** Parses a body into values; throws "line N is not JSON" style errors. */
function parseBody(text: string, format: "json" | "ndjson"): unknown[] {
  if (format === "json") {
    const value: unknown = JSON.parse(text);
    return Array.isArray(value) ? value : [value];
  }
  const values: unknown[] = [];
  text.split("\n").forEach((line, i) => {
    if (line.trim() === "") return;
    try {
      values.push(JSON.parse(line));
    } catch {
      throw new SyntaxError(`line ${i + 1} is not JSON`);
    }
  });
  return values;
}

function answer(status: number, body: Record<string, unknown>, headers = {}): Response {
  return Response.json(body, { status, headers });
}

/**
 * The `http` source definition (config {@linkcode HttpSourceOptions}). Prefer the
 * {@linkcode httpSource} builder.
 *
 * @example
 * ```ts
 * import { httpSourceStage } from "@sluice/sluice";
 * import assert from "node:assert/strict";
 *
 * assert.equal(httpSourceStage.name, "http");
 * ```
 */
export const httpSourceStage: SourceDefinition<unknown, HttpSourceOptions> = defineSource({
  name: "http",
  config: httpSourceConfig,
  async open(config, ctx) {
    const path = config.path ?? "/";
    const format = config.format ?? "json";
    const maxBody = config.maxBodyBytes ?? 1 << 20;
    const processed = config.ackMode === "processed";
    const timeoutMs = config.acceptTimeoutMs ?? 5000;
    const busy = {
      "retry-after": String(config.retryAfterSec ?? 1),
    };
    const intake = new Intake(config.queueRecords ?? 10_000);
    const auth = config.auth;
    const hmac = auth && "hmac" in auth ? await hmacChecker(auth.hmac.secret) : undefined;
    const hmacHeader = auth && "hmac" in auth ? auth.hmac.header ?? "x-signature" : "";
    let seq = 0;

    const handle = async (req: Request): Promise<Response> => {
      if (new URL(req.url).pathname !== path) return answer(404, { error: "not found" });
      if (req.method !== "POST") {
        return answer(405, { error: "use POST" }, { allow: "POST" });
      }
      if (auth && "bearer" in auth && !(await bearerOk(req, auth.bearer))) {
        await req.body?.cancel().catch(() => {});
        return answer(401, { error: "missing or bad bearer token" }, {
          "www-authenticate": "Bearer",
        });
      }
      if (!intake.fits(1)) {
        await req.body?.cancel().catch(() => {});
        return answer(503, { error: "pipeline is backed up" }, busy);
      }
      const body = await readBody(req, maxBody);
      if (body === "too large") {
        return answer(413, { error: `body is over ${maxBody} bytes` }, { connection: "close" });
      }
      if (hmac && !(await hmac(req.headers.get(hmacHeader), body))) {
        return answer(401, { error: "missing or bad signature" });
      }
      let values: unknown[];
      try {
        values = parseBody(new TextDecoder().decode(body), format);
      } catch (e) {
        return answer(400, { error: `Cannot parse body: ${(e as Error).message}` });
      }
      const now = ctx.now();
      const records: StreamRecord<unknown>[] = values.map((value) => ({
        value,
        ts: now,
        headers: { source: "http", path },
      }));
      if (records.length === 0) return answer(200, { accepted: 0 });
      const outcome: Outcome = await intake.offer(records, timeoutMs);
      if (outcome === "accepted") return answer(202, { accepted: records.length });
      if (outcome === "processed") return answer(200, { processed: records.length });
      return answer(503, { error: "pipeline is backed up" }, busy);
    };

    const server = Deno.serve({
      hostname: config.hostname ?? "127.0.0.1",
      port: config.port,
      onListen: () => {}, // no banner; and nothing about requests or secrets is ever logged
      onError: () => answer(500, { error: "internal error" }),
    }, handle);

    let closing: Promise<void> | undefined;
    const close = () =>
      closing ??= (async () => {
        intake.close();
        await server.shutdown();
      })();
    // A stage the runtime kills is not closed: the kill refuses what waits and frees the port.
    ctx.signal.addEventListener("abort", () => void close(), { once: true });
    return {
      async pull({ max, signal }) {
        await intake.waitForWork(100, signal);
        if (signal.aborted) return null;
        const position = ++seq;
        const records = intake.take(max, processed ? position : undefined);
        return { records, position };
      },
      ack(position) {
        if (processed) intake.ack(position as number);
      },
      close,
    };
  },
});

/**
 * Receives records over HTTP: `POST <path>` with a JSON body (one record, or one per element of
 * a top-level array) or NDJSON (one record per line); each record has the arrival time as event
 * time and headers `{ source: "http", path }`.
 *
 * Answers (JSON bodies):
 * - **202** `{ accepted: n }` once a pull took the records into the pipeline (`ackMode:
 *   "accepted"`), or **200** `{ processed: n }` once they were all written by the sinks or
 *   dead-lettered (`ackMode: "processed"`, end-to-end at-least-once: a client that got no 200
 *   sends again).
 * - **503** with `Retry-After` when the pipeline has no room: the intake already holds
 *   `queueRecords` records, or no pull took the request within `acceptTimeoutMs` (the pipeline
 *   is backed up by a slow sink). Nothing of a 503 request enters the pipeline.
 * - **401** on a missing/bad bearer token (checked before the body is read) or HMAC signature
 *   (compared in constant time); **413** when the body is over `maxBodyBytes` (counted while
 *   streaming; the rest is not read); **400** when the body is not valid JSON/NDJSON — the whole
 *   request is refused (nothing is dead-lettered) so the client can fix and resend it;
 *   **404** or **405** for other paths and methods.
 *
 * Secrets (token, HMAC secret) never appear in answers or logs; `Deno.serve`'s banner and error
 * logging are off. Permissions: `net` to `hostname:port`. Run it with parallelism 1 (it owns the
 * port).
 *
 * @param options See {@linkcode HttpSourceOptions}.
 * @param stageOptions Stage options.
 * @returns A source reference.
 * @throws {ConfigError} When the options are invalid.
 *
 * @example
 * ```ts
 * import { httpSource } from "@sluice/sluice";
 * import assert from "node:assert/strict";
 *
 * const ref = httpSource({ port: 8080, auth: { bearer: "s3cret" }, format: "ndjson" });
 * assert.deepEqual(ref.options?.permissions, { net: ["127.0.0.1:8080"] });
 * ```
 */
export function httpSource<T = unknown>(
  options: HttpSourceOptions,
  stageOptions?: StageOptions,
): StageRef<never, T> {
  parseConfig(httpSourceStage, stageOptions?.name ?? httpSourceStage.name, options);
  const net = [`${options.hostname ?? "127.0.0.1"}:${options.port}`];
  return {
    kind: "source",
    module: import.meta.url,
    export: "httpSourceStage",
    config: options,
    options: { permissions: { net }, ...stageOptions },
  };
}
