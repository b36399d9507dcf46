/**
 * `httpSink`: POSTs records as NDJSON batches, retrying transient failures, with an
 * `Idempotency-Key` derived from the batch content.
 *
 * @module
 */
import { z } from "../../actors/_deps.ts";
import { parseConfig } from "../../actors/_config.ts";
import { RetriableError } from "../../actors/errors.ts";
import type { StreamRecord } from "../../actors/record.ts";
import { defineSink, type SinkDefinition } from "../../actors/stage.ts";
import type { StageOptions, StageRef } from "../../actors/stage_ref.ts";
import { sleep } from "../../actors/_sleep.ts";

/** Options of {@linkcode httpSink}. */
export interface HttpSinkOptions {
  /** Where batches are sent. */
  url: string;
  /** `POST` (default) or `PUT`. */
  method?: "POST" | "PUT";
  /** Extra request headers (e.g. `authorization`); never logged nor put in errors. */
  headers?: Record<string, string>;
  /** Largest request body, bytes; a batch is split into several requests above it. Default 1 MiB. */
  batchBytes?: number;
  /** Retries of one request on 5xx, 408, 429 or network errors before giving up. Default 5. */
  retries?: number;
  /** First retry delay, ms; doubles per retry, with jitter. Default 100. */
  backoffMs?: number;
  /** Longest retry delay, ms. Default 5000. */
  maxBackoffMs?: number;
  /** Timeout of one request, ms. Default 10 000. */
  timeoutMs?: number;
}

const httpSinkConfig: z.ZodType<HttpSinkOptions> = z.object({
  // As URLs are read: surrounding whitespace and tabs or line breaks inside dropped.
  url: z.string().transform((s) => s.trim().replace(/[\t\n\r]/g, "")).refine(
    (s) => /^https?:\/\//i.test(s) && URL.canParse(s),
    "Invalid URL: expected http:// or https://",
  ),
  method: z.enum(["POST", "PUT"]).optional(),
  headers: z.record(z.string(), z.string()).optional(),
  batchBytes: z.number().int().safe().positive().optional(),
  retries: z.number().int().safe().min(0).optional(),
  backoffMs: z.number().positive().finite().optional(),
  maxBackoffMs: z.number().positive().finite().optional(),
  timeoutMs: z.number().positive().finite().optional(),
}).strict();

const encoder = new TextEncoder();

/** Splits NDJSON lines into bodies of at most `max` bytes (a longer line goes alone). */
function bodies(records: StreamRecord<unknown>[], max: number): Uint8Array<ArrayBuffer>[] {
  const out: Uint8Array<ArrayBuffer>[] = [];
  let lines: string[] = [];
  let size = 0;
  for (const r of records) {
    const line = JSON.stringify(r.value ?? null) + "\n";
    const n = encoder.encode(line).length;
    if (lines.length > 0 && size + n > max) {
      out.push(encoder.encode(lines.join("")));
      lines = [];
      size = 0;
    }
    lines.push(line);
    size += n;
  }
  if (lines.length > 0) out.push(encoder.encode(lines.join("")));
  return out;
}

async function sha256Hex(bytes: Uint8Array<ArrayBuffer>): Promise<string> {
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", bytes));
  return [...digest].map((b) => b.toString(16).padStart(2, "0")).join("");
}

/** Whether an HTTP status is worth retrying. */
function transient(status: number): boolean {
  return status >= 500 || status === 408 || status === 429;
}

/**
 * The `httpSink` definition (config {@linkcode HttpSinkOptions}). Prefer the {@linkcode httpSink}
 * builder.
 *
 * @example
 * ```ts
 * import { httpSinkStage } from "@sluice/sluice";
 * import assert from "node:assert/strict";
 *
 * assert.equal(httpSinkStage.name, "httpSink");
 * ```
 */
export const httpSinkStage: SinkDefinition<unknown, HttpSinkOptions> = defineSink({
  name: "httpSink",
  config: httpSinkConfig,
  open(config, ctx) {
    const url = new URL(config.url);
    // Errors name the endpoint without credentials or query (which may hold secrets).
    const where = `${url.origin}${url.pathname}`;
    const retries = config.retries ?? 5;
    const base = config.backoffMs ?? 100;
    const cap = config.maxBackoffMs ?? 5000;

    const send = async (body: Uint8Array<ArrayBuffer>): Promise<void> => {
      const key = await sha256Hex(body);
      let last = "";
      for (let attempt = 0; attempt <= retries; attempt++) {
        if (attempt > 0) {
          const delay = Math.min(cap, base * 2 ** (attempt - 1));
          await sleep(delay * (0.5 + Math.random() / 2), ctx.signal);
        }
        let res: Response;
        try {
          res = await fetch(config.url, {
            method: config.method ?? "POST",
            headers: {
              "content-type": "application/x-ndjson",
              ...config.headers,
              "idempotency-key": key,
            },
            body,
            signal: AbortSignal.timeout(config.timeoutMs ?? 10_000),
          });
        } catch (e) {
          last = `request failed (${(e as Error).name})`;
          continue;
        }
        await res.body?.cancel().catch(() => {});
        if (res.ok) return;
        last = `answered ${res.status}`;
        if (!transient(res.status)) {
          throw new Error(`Cannot post batch: ${where} answered ${res.status}`);
        }
      }
      throw new RetriableError(
        `Cannot post batch: ${where} ${last} after ${retries + 1} attempts`,
      );
    };

    return {
      async write(records: StreamRecord<unknown>[]) {
        for (const body of bodies(records, config.batchBytes ?? 1 << 20)) await send(body);
      },
    };
  },
});

/**
 * Sends records to an HTTP endpoint as NDJSON (`JSON.stringify(value)` per line), one request
 * per batch (split above `batchBytes`). `write` resolves once every request got a 2xx.
 *
 * - **Retries**: 5xx, 408, 429 and network errors are retried `retries` times with exponential
 *   backoff and jitter; after that the sink throws a `RetriableError`, so the runtime retries the
 *   batch with backoff and the pipeline backs up (nothing upstream is acked) until the endpoint
 *   recovers. Other 4xx answers fail the batch for good (retried `maxRetries`, then
 *   dead-lettered record by record).
 * - **Idempotency**: each request carries `Idempotency-Key: <hex SHA-256 of the body>`, the same
 *   on every retry and replay of the same records, so a server that honours the header applies a
 *   batch once.
 * - **Secrets**: `headers` (e.g. `authorization`) never appear in errors; errors name the URL
 *   without credentials or query string.
 * - **Permissions**: `net` to the URL's host.
 *
 * @param options See {@linkcode HttpSinkOptions}.
 * @param stageOptions Stage options.
 * @returns A sink reference.
 * @throws {ConfigError} When the options are invalid.
 *
 * @example
 * ```ts
 * import { httpSink } from "@sluice/sluice";
 * import assert from "node:assert/strict";
 *
 * const ref = httpSink({ url: "http://127.0.0.1:8088/ingest", retries: 3 });
 * assert.deepEqual(ref.options?.permissions, { net: ["127.0.0.1:8088"] });
 * ```
 */
export function httpSink<T = unknown>(
  options: HttpSinkOptions,
  stageOptions?: StageOptions,
): StageRef<T, never> {
  parseConfig(httpSinkStage, stageOptions?.name ?? httpSinkStage.name, options);
  return {
    kind: "sink",
    module: import.meta.url,
    export: "httpSinkStage",
    config: options,
    options: { permissions: { net: [new URL(options.url).host] }, ...stageOptions },
  };
}
