/**
 * `kafkaSink`: writes records to a Kafka topic, one acknowledged produce request per batch.
 *
 * @module
 */
import { z } from "../../actors/_deps.ts";
import { parseConfig } from "../../actors/_config.ts";
import { RetriableError } from "../../actors/errors.ts";
import { compileFn, type InlineFn, inlineFn } from "../../actors/inline_fn.ts";
import type { StreamRecord } from "../../actors/record.ts";
import { defineSink, type SinkDefinition } from "../../actors/stage.ts";
import type { StageOptions, StageRef } from "../../actors/stage_ref.ts";
import { type kafkajs, loadKafkajs } from "./_deps.ts";
import { connectionFields, createKafka, isRecordError, kafkaMessage } from "./_client.ts";
import { encodeRecord, type KafkaEncoder, messageSize } from "./_encode.ts";
import { type KafkaConnectionOptions, KAFKAJS_ENV, kafkaPermissions } from "./kafka_connection.ts";

export type { KafkaEncoder };

/** Options of {@linkcode kafkaSink}. */
export interface KafkaSinkOptions<T = unknown> extends KafkaConnectionOptions {
  /** Topic to write to. */
  topic: string;
  /** Broker acknowledgement: -1 all in-sync replicas (default), 1 the leader, 0 none. */
  acks?: -1 | 0 | 1;
  /** Idempotent producer: no duplicates from its own retries (needs `acks: -1`). Default true. */
  idempotent?: boolean;
  /** Compression of record batches. Default `"none"`. */
  compression?: "none" | "gzip";
  /**
   * How values are encoded. `"auto"` (default): bytes as they are, strings as UTF-8, anything
   * else as JSON. `"bytes"`: `Uint8Array`/`ArrayBuffer` only. `"text"`: strings (and numbers,
   * booleans). `"json"`: `JSON.stringify`. `null` is a tombstone. A value the encoder does not
   * take fails that record alone (dead-lettered).
   */
  encoder?: KafkaEncoder;
  /** Computes the message key; default: the record's `key`. Runs in a worker: no closures. */
  keyFrom?: (value: T, record: StreamRecord<T>) => string | null | undefined;
  /** Header whose value picks the partition; removed from the message. Default `"kafka.sink.partition"`. */
  partitionHeader?: string;
  /** Most estimated bytes per produce request; larger batches are split. Default 900 000. */
  maxRequestBytes?: number;
  /** Largest message accepted (estimated); larger ones are dead-lettered. Default 1 000 000. */
  maxMessageBytes?: number;
  /** Retries of a failed request inside kafkajs before the batch fails (≥ 1 when idempotent). Default 5. */
  retries?: number;
  /** Time the broker may take to acknowledge, ms. Default 30 000. */
  ackTimeoutMs?: number;
}

/** {@linkcode KafkaSinkOptions} as validated in the worker: `keyFrom` as source text, defaults applied. */
export type KafkaSinkConfig =
  & Omit<Required<KafkaSinkOptions>, "brokers" | "keyFrom" | "ssl" | "sasl">
  & Pick<KafkaSinkOptions, "ssl" | "sasl">
  & { brokers: string[]; keyFrom?: InlineFn };

/** The wire form: what the builder sends, with `keyFrom` already serialised. */
type KafkaSinkWire = Omit<KafkaSinkOptions, "keyFrom"> & { keyFrom?: InlineFn };

const sinkConfig: z.ZodType<KafkaSinkConfig, z.ZodTypeDef, KafkaSinkWire> = z.object({
  ...connectionFields,
  topic: z.string().min(1),
  acks: z.union([z.literal(-1), z.literal(0), z.literal(1)]).default(-1),
  idempotent: z.boolean().default(true),
  compression: z.enum(["none", "gzip"]).default("none"),
  encoder: z.enum(["auto", "bytes", "text", "json"]).default("auto"),
  keyFrom: z.object({ fn: z.string() }).strict().optional(),
  partitionHeader: z.string().min(1).default("kafka.sink.partition"),
  maxRequestBytes: z.number().int().safe().min(1024).default(900_000),
  maxMessageBytes: z.number().int().safe().min(64).default(1_000_000),
  retries: z.number().int().safe().min(0).default(5),
  ackTimeoutMs: z.number().int().safe().positive().default(30_000),
}).strict().refine((c) => !c.idempotent || c.acks === -1, {
  message: "must be -1 when idempotent is true",
  path: ["acks"],
}).refine((c) => !c.idempotent || c.retries > 0, {
  message: "must be at least 1 when idempotent is true",
  path: ["retries"],
});

type KeyFn = (value: unknown, record: StreamRecord<unknown>) => string | null | undefined;

/**
 * The `kafka-sink` definition: config {@linkcode KafkaSinkConfig}. Prefer the
 * {@linkcode kafkaSink} builder, which also narrows the worker's permissions to the brokers.
 *
 * @example
 * ```ts
 * import { kafkaSinkStage } from "@sluice/sluice";
 * import assert from "node:assert/strict";
 *
 * assert.equal(kafkaSinkStage.kind, "sink");
 * ```
 */
export const kafkaSinkStage: SinkDefinition<unknown, KafkaSinkConfig> = defineSink({
  name: "kafka-sink",
  config: sinkConfig,
  permissions: { net: true, env: [...KAFKAJS_ENV] },
  async open(config, ctx) {
    const { CompressionTypes } = await loadKafkajs();
    const kafka = await createKafka(config, {
      retries: config.retries,
      initialRetryTime: 100,
      maxRetryTime: 2000,
    });
    const keyFn = config.keyFrom ? compileFn<KeyFn>(config.keyFrom) : undefined;
    const compression = config.compression === "gzip"
      ? CompressionTypes.GZIP
      : CompressionTypes.None;
    const where = `Cannot write to Kafka topic "${config.topic}"`;
    let producer: Promise<kafkajs.Producer> | undefined;
    let killed = false;

    const connect = () =>
      producer ??= (async () => {
        if (killed) throw new Error(`${where}: the sink was stopped`);
        const p = kafka.producer({
          idempotent: config.idempotent,
          maxInFlightRequests: config.idempotent ? 1 : undefined,
          retry: { retries: config.retries, initialRetryTime: 100, maxRetryTime: 2000 },
        });
        await p.connect();
        return p;
      })();
    // A producer that failed is replaced: a fresh idempotent producer id avoids sequence errors.
    const reset = async () => {
      const old = producer;
      producer = undefined;
      await old?.then((p) => p.disconnect()).catch(() => {});
    };
    // A stage the runtime kills is not closed: the kill disconnects the producer, for good.
    ctx.signal.addEventListener("abort", () => {
      killed = true;
      void reset();
    }, { once: true });

    return {
      async write(records: StreamRecord<unknown>[]) {
        const chunks: kafkajs.Message[][] = [[]];
        let bytes = 0;
        for (const record of records) {
          const key = keyFn ? keyFn(record.value, record) ?? undefined : record.key;
          const message = encodeRecord(record, config.encoder, key, config.partitionHeader);
          const size = messageSize(message);
          if (size > config.maxMessageBytes) {
            throw new RangeError(
              `${where}: a message of ~${size} bytes is over maxMessageBytes ${config.maxMessageBytes}`,
            );
          }
          if (bytes + size > config.maxRequestBytes && chunks.at(-1)!.length > 0) {
            chunks.push([]);
            bytes = 0;
          }
          chunks.at(-1)!.push(message);
          bytes += size;
        }
        for (const messages of chunks) {
          if (messages.length === 0) continue;
          try {
            const p = await connect();
            await p.send({
              topic: config.topic,
              messages,
              acks: config.acks,
              timeout: config.ackTimeoutMs,
              compression,
            });
          } catch (error) {
            if (isRecordError(error)) {
              throw new Error(`${where}: ${kafkaMessage(error)}`, { cause: error });
            }
            await reset();
            throw new RetriableError(`${where}: ${kafkaMessage(error)}`, { cause: error });
          }
        }
      },
      async close() {
        await reset();
      },
    };
  },
});

/**
 * A sink that writes records to a Kafka topic. Each batch the runtime hands over becomes one
 * produce request (split only past `maxRequestBytes`) and `write` resolves once the broker
 * acknowledged it (`acks`, default all in-sync replicas), so records are acked upstream only
 * when they are durable. The message key is the record key (or `keyFrom`), the timestamp is the
 * record's event time, headers are kept except the source coordinates (`kafka.topic`,
 * `kafka.partition`, `kafka.offset`); the `partitionHeader` header, when set, picks the
 * partition.
 *
 * Failures: a broker that is down, unreachable or slow makes `write` throw a
 * {@linkcode RetriableError}, so the pipeline backs up (nothing upstream is committed) and the
 * batch is retried until it succeeds; a record the broker or encoder rejects (too large, wrong
 * type) throws a plain error, so the runtime isolates it and dead-letters it alone.
 *
 * @param options Brokers, topic and producer settings; see {@linkcode KafkaSinkOptions}.
 * @param stageOptions Stage options; `permissions` defaults to {@linkcode kafkaPermissions} of
 *   the brokers.
 * @returns A sink reference for a pipeline.
 * @throws {ConfigError} When an option is invalid, naming its path.
 * @throws {TypeError} When `keyFrom` closes over outer variables.
 *
 * @example Keyed by user
 * ```ts
 * import { kafkaSink } from "@sluice/sluice";
 * import assert from "node:assert/strict";
 *
 * const sink = kafkaSink<{ user: string }>({
 *   brokers: "127.0.0.1:9092",
 *   topic: "events",
 *   keyFrom: (value) => value.user,
 * });
 * assert.equal(sink.kind, "sink");
 * assert.throws(() => kafkaSink({ brokers: "127.0.0.1:9092", topic: "t", acks: 1 }), /config\.acks/);
 * ```
 */
export function kafkaSink<T = unknown>(
  options: KafkaSinkOptions<T>,
  stageOptions: StageOptions = {},
): StageRef<T, never> {
  const { keyFrom, ...rest } = options;
  const config: KafkaSinkWire = keyFrom ? { ...rest, keyFrom: inlineFn(keyFrom, "keyFrom") } : rest;
  parseConfig(kafkaSinkStage, stageOptions.name ?? kafkaSinkStage.name, config);
  return {
    kind: "sink",
    module: import.meta.url,
    export: "kafkaSinkStage",
    config,
    options: { permissions: kafkaPermissions(options.brokers), ...stageOptions },
  };
}
