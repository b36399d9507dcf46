/**
 * `redisStreamSink`: appends records to a Redis stream, one pipelined round trip per batch.
 *
 * @module
 */
import { z } from "../../actors/_deps.ts";
import { parseConfig } from "../../actors/_config.ts";
import { RetriableError } from "../../actors/errors.ts";
import type { StreamRecord } from "../../actors/record.ts";
import { defineSink, type SinkDefinition } from "../../actors/stage.ts";
import type { StageOptions, StageRef } from "../../actors/stage_ref.ts";
import { connectionFields, createRedis, isTransient } from "./_client.ts";
import { oneLine } from "../../stores/_faults.ts";
import { encodeRecord } from "./_entries.ts";
import { type RedisConnectionOptions, redisPermissions } from "./redis_connection.ts";

/** Options of {@linkcode redisStreamSink}. */
export interface RedisStreamSinkOptions extends RedisConnectionOptions {
  /** Stream key to append to (created by the first XADD). */
  stream: string;
  /** Cap the stream at about this many entries (`XADD … MAXLEN ~ n`). Default: no cap. */
  maxLen?: number;
  /** Trim approximately (`~`, default true: cheaper) or exactly (`=`). */
  approximate?: boolean;
}

/** {@linkcode RedisStreamSinkOptions} as validated, with defaults applied. */
export type RedisStreamSinkConfig =
  & Omit<Required<RedisStreamSinkOptions>, "maxLen">
  & Pick<RedisStreamSinkOptions, "maxLen">;

const sinkConfig: z.ZodType<RedisStreamSinkConfig, z.ZodTypeDef, RedisStreamSinkOptions> = z.object(
  {
    ...connectionFields,
    stream: z.string().min(1),
    maxLen: z.number().int().safe().min(0).optional(),
    approximate: z.boolean().default(true),
  },
).strict();

/**
 * The `redis-stream-sink` definition: config {@linkcode RedisStreamSinkConfig}. Prefer the
 * {@linkcode redisStreamSink} builder, which also narrows the worker's permissions.
 *
 * @example
 * ```ts
 * import { redisStreamSinkStage } from "@sluice/sluice";
 * import assert from "node:assert/strict";
 *
 * assert.equal(redisStreamSinkStage.kind, "sink");
 * ```
 */
export const redisStreamSinkStage: SinkDefinition<unknown, RedisStreamSinkConfig> = defineSink({
  name: "redis-stream-sink",
  config: sinkConfig,
  permissions: { net: true, env: true },
  async open(config, ctx) {
    const redis = await createRedis(config, `sluice:${ctx.stage}-${ctx.instance}`);
    const where = `Cannot append to Redis stream "${config.stream}"`;
    const trim = config.maxLen === undefined
      ? []
      : ["MAXLEN", config.approximate ? "~" : "=", String(config.maxLen)];
    // Closed once: by `close` (QUIT, waiting for what is under way) or, when the runtime kills the
    // stage without closing it, by the kill (disconnect at once, no more reconnecting).
    let closing: Promise<void> | undefined;
    const closeClient = (now: boolean) =>
      closing ??= now
        ? Promise.resolve(redis.disconnect())
        : redis.quit().then(() => {}, () => redis.disconnect());
    ctx.signal.addEventListener("abort", () => void closeClient(true), { once: true });
    return {
      async write(records: StreamRecord<unknown>[], ctx) {
        const pipe = redis.pipeline();
        const dead: [StreamRecord<unknown>, Error][] = [];
        for (const record of records) {
          let fields: string[];
          try {
            fields = encodeRecord(record);
          } catch (error) {
            dead.push([record, new Error(`${where}: ${oneLine(error)}`, { cause: error })]);
            continue;
          }
          pipe.xadd(config.stream, ...trim, "*", ...fields);
        }
        if (pipe.length > 0) {
          let failure: unknown;
          try {
            const results = await pipe.exec();
            failure = results?.find(([error]) => error)?.[0];
          } catch (error) {
            failure = error;
          }
          if (failure) {
            const message = `${where}: ${oneLine(failure)}`;
            if (isTransient(failure)) throw new RetriableError(message, { cause: failure });
            throw new Error(message, { cause: failure });
          }
        }
        for (const [record, error] of dead) ctx.deadLetter(record, error);
      },
      async close() {
        await closeClient(false);
      },
    };
  },
});

/**
 * A sink that appends records to a Redis stream with XADD (`MAXLEN ~ maxLen` when capped), all
 * commands of a batch pipelined in one round trip; `write` resolves once every reply arrived, so
 * records are acked upstream only when Redis has them. Entries get fields `data` (the value as
 * JSON), `key` (the record key, when set) and `headers` (JSON of the headers, without `redis.*`
 * source coordinates) — what {@linkcode redisStreamSource} reads back.
 *
 * Failures: a server that is down or unreachable makes `write` throw a
 * {@linkcode RetriableError}, so the pipeline backs up and the batch is retried until it
 * succeeds (entries appended before the failure are appended again: at-least-once). A value that
 * is not JSON (a bigint, a function, a cycle) is dead-lettered alone.
 *
 * @param options Connection, stream and trimming; see {@linkcode RedisStreamSinkOptions}.
 * @param stageOptions Stage options; `permissions` defaults to {@linkcode redisPermissions}.
 * @returns A sink reference for a pipeline.
 * @throws {ConfigError} When an option is invalid, naming its path.
 *
 * @example A capped event stream
 * ```ts
 * import { redisStreamSink } from "@sluice/sluice";
 * import assert from "node:assert/strict";
 *
 * const sink = redisStreamSink({ url: "redis://127.0.0.1:6379", stream: "events", maxLen: 100_000 });
 * assert.equal(sink.kind, "sink");
 * assert.throws(
 *   () => redisStreamSink({ url: "redis://x", stream: "events", maxLen: -1 }),
 *   /config\.maxLen/,
 * );
 * ```
 */
export function redisStreamSink<T = unknown>(
  options: RedisStreamSinkOptions,
  stageOptions: StageOptions = {},
): StageRef<T, never> {
  parseConfig(redisStreamSinkStage, stageOptions.name ?? redisStreamSinkStage.name, options);
  return {
    kind: "sink",
    module: import.meta.url,
    export: "redisStreamSinkStage",
    config: options,
    options: { permissions: redisPermissions(options.url), ...stageOptions },
  };
}
