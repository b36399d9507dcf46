/**
 * `redisStreamSource`: entries of a Redis stream, read by a consumer group and acknowledged
 * (XACK) only once the pipeline finished them (at-least-once).
 *
 * @module
 */
import { z } from "../../actors/_deps.ts";
import { parseConfig } from "../../actors/_config.ts";
import { defineSource, type SourceDefinition } from "../../actors/stage.ts";
import type { StageOptions, StageRef } from "../../actors/stage_ref.ts";
import { connectionFields, createRedis } from "./_client.ts";
import { type StreamPosition, StreamReader } from "./_stream_reader.ts";
import { type RedisConnectionOptions, redisPermissions } from "./redis_connection.ts";

/** Options of {@linkcode redisStreamSource}. */
export interface RedisStreamSourceOptions extends RedisConnectionOptions {
  /** Stream key; created (empty) when missing. */
  stream: string;
  /** Consumer group; created when missing. */
  group: string;
  /**
   * Consumer name prefix. Instance `i` of the stage is `<consumer>-<i>` (just `<consumer>` with
   * parallelism 1). Default: the stage name. Keep it stable across restarts so a restarted
   * instance re-reads its own pending entries; give each process its own when several run.
   */
  consumer?: string;
  /** Where a newly created group starts: `"0"` (whole stream, default), `"$"` (new entries only) or an id. */
  start?: string;
  /** Most entries per read (and per pull). Default 500. */
  count?: number;
  /** Longest a read waits for new entries, ms (a stop cuts it short). Default 1000. */
  blockMs?: number;
  /**
   * Claim entries that other consumers of the group left pending for longer than this, ms
   * (XAUTOCLAIM, checked every `claimIdleMs`): consumers that died do not strand their entries.
   * Must exceed the longest time an entry stays in flight in a live pipeline, or live consumers'
   * entries are claimed too (and read twice). Default: no claiming.
   */
  claimIdleMs?: number;
}

/** {@linkcode RedisStreamSourceOptions} as validated, with defaults applied. */
export type RedisStreamSourceConfig =
  & Omit<Required<RedisStreamSourceOptions>, "consumer" | "claimIdleMs">
  & Pick<RedisStreamSourceOptions, "consumer" | "claimIdleMs">;

const sourceConfig: z.ZodType<RedisStreamSourceConfig, z.ZodTypeDef, RedisStreamSourceOptions> = z
  .object({
    ...connectionFields,
    stream: z.string().min(1),
    group: z.string().min(1),
    consumer: z.string().min(1).optional(),
    start: z.string().regex(/^(\$|0|\d+(-\d+)?)$/, "expected 0, $ or an entry id").default("0"),
    count: z.number().int().safe().positive().max(100_000).default(500),
    blockMs: z.number().int().safe().positive().default(1000),
    claimIdleMs: z.number().int().safe().positive().optional(),
  }).strict();

/**
 * The `redis-stream-source` definition: config {@linkcode RedisStreamSourceConfig}. Prefer the
 * {@linkcode redisStreamSource} builder, which also narrows the worker's permissions.
 *
 * @example
 * ```ts
 * import { redisStreamSourceStage } from "@sluice/sluice";
 * import assert from "node:assert/strict";
 *
 * assert.equal(redisStreamSourceStage.kind, "source");
 * ```
 */
export const redisStreamSourceStage: SourceDefinition<unknown, RedisStreamSourceConfig> =
  defineSource({
    name: "redis-stream-source",
    config: sourceConfig,
    permissions: { net: true, env: true },
    async open(config, ctx) {
      const prefix = config.consumer ?? ctx.stage;
      const consumer = ctx.parallelism === 1 ? prefix : `${prefix}-${ctx.instance}`;
      const name = `sluice:${consumer}`;
      const cmd = await createRedis(config, name);
      const blocking = await createRedis(config, `${name}:read`);
      const reader = new StreamReader({ ...config, consumer }, cmd, blocking);
      try {
        await reader.open(config.start);
      } catch (error) {
        await reader.close();
        throw error;
      }
      // A stage the runtime kills is not closed: the kill disconnects both clients.
      ctx.signal.addEventListener("abort", () => void reader.close(), { once: true });
      return {
        pull: (options, c) => reader.pull(options, c),
        ack: (position) => reader.ack(position as StreamPosition),
        close: () => reader.close(),
      };
    },
  });

/**
 * A source of the entries of a Redis stream, read as a consumer group. Each pull (and only a
 * pull) reads: first this consumer's own pending entries (left by a previous run that stopped
 * before acknowledging), then, with `claimIdleMs`, entries that dead consumers left pending
 * (XAUTOCLAIM), then new entries with a blocking XREADGROUP bounded by `blockMs` and by the
 * pipeline stopping. An entry is acknowledged (XACK) only when `ack` gets its pull's position,
 * i.e. after every sink stored it (at-least-once).
 *
 * Records: an entry with a `data` field (as written by {@linkcode redisStreamSink}) has that
 * JSON value, its `key` field as key and its `headers` field's headers; any other entry's value
 * is its field map. Headers `redis.stream` and `redis.id` say where it came from; `ts` is the
 * id's millisecond part. An entry whose `data` is not JSON, or that was trimmed from the stream
 * while pending, is dead-lettered with those headers (and acknowledged).
 *
 * @param options Connection, stream, group and read settings; see {@linkcode RedisStreamSourceOptions}.
 * @param stageOptions Stage options; `permissions` defaults to {@linkcode redisPermissions}.
 * @returns A source reference for a pipeline.
 * @throws {ConfigError} When an option is invalid, naming its path.
 *
 * @example Orders from a stream, new entries only
 * ```ts
 * import { redisStreamSource } from "@sluice/sluice";
 * import assert from "node:assert/strict";
 *
 * const source = redisStreamSource({
 *   url: "redis://127.0.0.1:6379",
 *   stream: "orders",
 *   group: "billing",
 *   start: "$",
 *   claimIdleMs: 60_000,
 * });
 * assert.equal(source.kind, "source");
 * assert.throws(
 *   () => redisStreamSource({ url: "redis://x", stream: "orders", group: "g", start: "end" }),
 *   /config\.start/,
 * );
 * ```
 */
export function redisStreamSource<T = unknown>(
  options: RedisStreamSourceOptions,
  stageOptions: StageOptions = {},
): StageRef<never, T> {
  parseConfig(redisStreamSourceStage, stageOptions.name ?? redisStreamSourceStage.name, options);
  return {
    kind: "source",
    module: import.meta.url,
    export: "redisStreamSourceStage",
    config: options,
    options: { permissions: redisPermissions(options.url), ...stageOptions },
  };
}
