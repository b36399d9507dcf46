/**
 * `kafkaSource`: records from Kafka topics, read by a consumer group, with offsets committed only
 * once the pipeline acked every record up to them (at-least-once).
 *
 * @module
 */
import { z } from "../../actors/_deps.ts";
import { parseConfig } from "../../actors/_config.ts";
import { defineSource, type SourceDefinition } from "../../actors/stage.ts";
import type { StageOptions, StageRef } from "../../actors/stage_ref.ts";
import type { kafkajs } from "./_deps.ts";
import { connectionFields, createKafka, kafkaMessage } from "./_client.ts";
import type { KafkaDecoder } from "./_decode.ts";
import { KafkaSourceInstance } from "./_source_instance.ts";
import { type KafkaConnectionOptions, KAFKAJS_ENV, kafkaPermissions } from "./kafka_connection.ts";

export type { KafkaDecoder };

/** A snapshot of a source instance's internals, for tests and diagnostics. */
export interface KafkaSourceStats {
  /** kafkajs batches held, not yet handed to the pipeline (at most `maxBufferedBatches`). */
  bufferedBatches: number;
  /** Messages in those batches. */
  bufferedMessages: number;
  /** Partitions paused for lack of buffer space, as `topic:partition`. */
  paused: string[];
  /** Partitions assigned to this instance, as `topic:partition`. */
  assigned: string[];
  /** Pulls handed to the pipeline and not acked yet. */
  inflight: number;
  /** Committed offsets (next offset to read) per `topic:partition`, as committed by this instance. */
  committed: Record<string, number>;
}

/** Options of {@linkcode kafkaSource}: connection plus consumer settings. */
export interface KafkaSourceOptions extends KafkaConnectionOptions {
  /** Topics to read (one name or several). */
  topics: string | string[];
  /** Consumer group: partitions are spread over its members, offsets are committed for it. */
  groupId: string;
  /**
   * Where to start. `"committed"` (default): at the group's committed offsets; partitions with
   * none start at the end, or at the beginning with `fromBeginning`. `"earliest"` / `"latest"`:
   * each instance moves the partitions of its first assignment to the beginning / end, whatever
   * was committed (a replay or a skip; meant for one instance).
   */
  start?: "committed" | "earliest" | "latest";
  /** With `start: "committed"`, where partitions without a committed offset start. Default false (end). */
  fromBeginning?: boolean;
  /**
   * How values are decoded. `"bytes"` (default): a `Uint8Array` with its own buffer. `"text"`:
   * UTF-8 string. `"json"`: parsed JSON. A value that does not decode is dead-lettered (with its
   * text and `kafka.topic`/`kafka.partition`/`kafka.offset` headers) and the stream goes on.
   * Tombstones (null values) are `null` with every decoder.
   */
  decoder?: KafkaDecoder;
  /** Session timeout of the group membership, ms. Default 10 000. */
  sessionTimeoutMs?: number;
  /** How long the group waits for members to rejoin in a rebalance, ms. Default 30 000. */
  rebalanceTimeoutMs?: number;
  /** Most kafkajs batches (≤ `maxBytesPerPartition` each) held for the pipeline. Default 4. */
  maxBufferedBatches?: number;
  /** Most bytes fetched per partition per request. Default 1 MiB. */
  maxBytesPerPartition?: number;
  /** Longest a fetch waits at the broker for data, ms (also the resume latency). Default 200. */
  maxWaitTimeMs?: number;
  /** Bound on waiting for acks of handed-out records when partitions are revoked, ms. Default 5000. */
  revokeTimeoutMs?: number;
  /** Read records of open and aborted transactions too. Default false (read_committed). */
  readUncommitted?: boolean;
}

/** {@linkcode KafkaSourceOptions} as validated: lists split, every default applied. */
export type KafkaSourceConfig =
  & Omit<Required<KafkaSourceOptions>, "brokers" | "topics" | "ssl" | "sasl">
  & Pick<KafkaSourceOptions, "ssl" | "sasl">
  & { brokers: string[]; topics: string[] };

const sourceConfig: z.ZodType<KafkaSourceConfig, z.ZodTypeDef, KafkaSourceOptions> = z.object({
  ...connectionFields,
  topics: z.union([z.string(), z.array(z.string())])
    .transform((t) => typeof t === "string" ? [t] : t)
    .pipe(z.array(z.string().min(1)).min(1, "expected at least one topic")),
  groupId: z.string().min(1),
  start: z.enum(["committed", "earliest", "latest"]).default("committed"),
  fromBeginning: z.boolean().default(false),
  decoder: z.enum(["bytes", "text", "json"]).default("bytes"),
  sessionTimeoutMs: z.number().int().safe().min(1000).default(10_000),
  rebalanceTimeoutMs: z.number().int().safe().min(1000).default(30_000),
  maxBufferedBatches: z.number().int().safe().min(1).default(4),
  maxBytesPerPartition: z.number().int().safe().min(1024).default(1_048_576),
  maxWaitTimeMs: z.number().int().safe().min(1).default(200),
  revokeTimeoutMs: z.number().int().safe().min(0).default(5_000),
  readUncommitted: z.boolean().default(false),
}).strict().refine((c) => c.revokeTimeoutMs < c.sessionTimeoutMs, {
  message: "must be below sessionTimeoutMs",
  path: ["revokeTimeoutMs"],
});

/** Offsets to move each partition to at the first assignment, for `start: earliest|latest`. */
async function startOffsets(
  kafka: kafkajs.Kafka,
  topics: string[],
  start: "earliest" | "latest",
): Promise<Map<string, string>> {
  const admin = kafka.admin();
  await admin.connect();
  try {
    const out = new Map<string, string>();
    for (const topic of topics) {
      for (const p of await admin.fetchTopicOffsets(topic)) {
        out.set(`${topic}:${p.partition}`, start === "earliest" ? p.low : p.high);
      }
    }
    return out;
  } finally {
    await admin.disconnect();
  }
}

/**
 * The `kafka-source` definition: config {@linkcode KafkaSourceOptions}. Prefer the
 * {@linkcode kafkaSource} builder, which also narrows the worker's permissions to the brokers.
 *
 * @example
 * ```ts
 * import { kafkaSourceStage } from "@sluice/sluice";
 * import assert from "node:assert/strict";
 *
 * assert.equal(kafkaSourceStage.kind, "source");
 * ```
 */
export const kafkaSourceStage: SourceDefinition<unknown, KafkaSourceConfig> = defineSource({
  name: "kafka-source",
  config: sourceConfig,
  permissions: { net: true, env: [...KAFKAJS_ENV] },
  async open(config, ctx) {
    const kafka = await createKafka(config, {
      retries: 8,
      initialRetryTime: 100,
      maxRetryTime: 2000,
    });
    const heartbeatIntervalMs = Math.min(3000, Math.floor(config.sessionTimeoutMs / 3));
    let initial: Map<string, string> | undefined;
    try {
      if (config.start !== "committed") {
        initial = await startOffsets(kafka, config.topics, config.start);
      }
    } catch (error) {
      throw new Error(`Cannot open Kafka source: ${kafkaMessage(error)}`, { cause: error });
    }
    const consumer = kafka.consumer({
      groupId: config.groupId,
      sessionTimeout: config.sessionTimeoutMs,
      rebalanceTimeout: config.rebalanceTimeoutMs,
      heartbeatInterval: heartbeatIntervalMs,
      maxBytesPerPartition: config.maxBytesPerPartition,
      maxWaitTimeInMs: config.maxWaitTimeMs,
      readUncommitted: config.readUncommitted,
    });
    const instance = new KafkaSourceInstance(consumer, {
      decoder: config.decoder,
      maxBufferedBatches: config.maxBufferedBatches,
      revokeTimeoutMs: config.revokeTimeoutMs,
      heartbeatIntervalMs,
    }, initial);
    const { GROUP_JOIN, REBALANCING, CRASH } = consumer.events;
    consumer.on(GROUP_JOIN, (e) => instance.onGroupJoin(e.payload.memberAssignment));
    consumer.on(REBALANCING, () => instance.onRebalancing());
    consumer.on(CRASH, (e) => {
      if (e.payload.restart) return;
      const why = `Cannot consume from Kafka as group "${config.groupId}": ` +
        kafkaMessage(e.payload.error);
      instance.onCrash(new Error(why, { cause: e.payload.error }));
    });
    try {
      await consumer.connect();
      await consumer.subscribe({ topics: config.topics, fromBeginning: config.fromBeginning });
      await consumer.run({
        autoCommit: false,
        eachBatchAutoResolve: false,
        partitionsConsumedConcurrently: 1,
        eachBatch: (payload) => instance.eachBatch(payload),
      });
    } catch (error) {
      await consumer.disconnect().catch(() => {});
      throw new Error(`Cannot open Kafka source: ${kafkaMessage(error)}`, { cause: error });
    }
    ctx.signal.addEventListener("abort", () => instance.abort(), { once: true });
    return instance;
  },
});

/**
 * A source of Kafka records read by a consumer group. Each record has the message key, the value
 * decoded per `decoder`, `ts` = the message timestamp, and the message headers plus
 * `kafka.topic`, `kafka.partition` and `kafka.offset`. Order is kept per partition.
 *
 * Delivery is at-least-once: an offset is committed only when every record up to it was written
 * by all sinks, filtered or dead-lettered. Backpressure: when the pipeline does not pull, at most
 * `maxBufferedBatches` fetched batches are held and the partitions are paused. On a rebalance,
 * records not yet handed out are dropped (fetched again by whoever owns the partition next);
 * when kafkajs notices the rebalance while delivering a batch, the group waits up to
 * `revokeTimeoutMs` for records already handed out to be acked and committed. Records of a
 * revoked partition that are acked later are not committed, so its new owner reads them again
 * (duplicates, never loss).
 *
 * @param options Brokers, topics, group and consumer settings; see {@linkcode KafkaSourceOptions}.
 * @param stageOptions Stage options; `permissions` defaults to {@linkcode kafkaPermissions} of
 *   the brokers.
 * @returns A source reference for a pipeline.
 * @throws {ConfigError} When an option is invalid, naming its path.
 *
 * @example Reading JSON orders
 * ```ts
 * import { kafkaSource } from "@sluice/sluice";
 * import assert from "node:assert/strict";
 *
 * const orders = kafkaSource<{ id: number }>({
 *   brokers: ["127.0.0.1:9092"],
 *   topics: "orders",
 *   groupId: "billing",
 *   decoder: "json",
 * });
 * assert.equal(orders.kind, "source");
 * assert.deepEqual(orders.options?.permissions, {
 *   net: ["127.0.0.1:9092"],
 *   env: ["NODE_ENV", "KAFKAJS_LOG_LEVEL", "KAFKAJS_NO_PARTITIONER_WARNING",
 *     "KAFKAJS_DEBUG_PROTOCOL_BUFFERS", "KAFKAJS_DEBUG_EXTENDED_PROTOCOL_BUFFERS"],
 * });
 * ```
 */
export function kafkaSource(
  options: KafkaSourceOptions & { decoder?: "bytes" },
  stageOptions?: StageOptions,
): StageRef<never, Uint8Array | null>;
/** {@linkcode kafkaSource} with `decoder: "text"`: values are strings (`null` for tombstones). */
export function kafkaSource(
  options: KafkaSourceOptions & { decoder: "text" },
  stageOptions?: StageOptions,
): StageRef<never, string | null>;
/** {@linkcode kafkaSource} with `decoder: "json"`: values are parsed JSON of type `T`. */
export function kafkaSource<T = unknown>(
  options: KafkaSourceOptions & { decoder: "json" },
  stageOptions?: StageOptions,
): StageRef<never, T>;
export function kafkaSource(
  options: KafkaSourceOptions,
  stageOptions: StageOptions = {},
): StageRef<never, unknown> {
  parseConfig(kafkaSourceStage, stageOptions.name ?? kafkaSourceStage.name, options);
  return {
    kind: "source",
    module: import.meta.url,
    export: "kafkaSourceStage",
    config: options,
    options: { permissions: kafkaPermissions(options.brokers), ...stageOptions },
  };
}
