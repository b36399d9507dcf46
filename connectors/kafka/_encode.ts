// StreamRecord → kafkajs message: value per encoder, key, event time as the message timestamp,
// headers minus the source coordinates, partition from a header. A value the encoder cannot
// take throws a plain Error: the runtime isolates that record and dead-letters it.
import { Buffer } from "node:buffer";
import type { StreamRecord } from "../../actors/record.ts";
import type { kafkajs } from "./_deps.ts";

/** How record values become message values. */
export type KafkaEncoder = "auto" | "bytes" | "text" | "json";

/** Headers a Kafka source adds; not copied to the messages written. */
const SOURCE_HEADERS = new Set(["kafka.topic", "kafka.partition", "kafka.offset"]);

/** Rough size of a message on the wire, for request splitting and the size limit. */
export function messageSize(m: kafkajs.Message): number {
  let size = 70 + byteLength(m.key) + byteLength(m.value);
  for (const [k, v] of Object.entries(m.headers ?? {})) size += k.length + byteLength(v);
  return size;
}

function byteLength(v: unknown): number {
  if (v == null) return 0;
  if (typeof v === "string") return Buffer.byteLength(v);
  if (v instanceof Uint8Array) return v.byteLength;
  return 0;
}

function typeOf(v: unknown): string {
  if (v === null) return "null";
  if (Array.isArray(v)) return "an array";
  if (v instanceof Uint8Array) return "bytes";
  return typeof v === "object" ? "an object" : `a ${typeof v}`;
}

function bytes(v: Uint8Array | ArrayBuffer): Buffer {
  return v instanceof ArrayBuffer
    ? Buffer.from(v)
    : Buffer.from(v.buffer, v.byteOffset, v.byteLength);
}

/** Encodes a value; `null`/`undefined` become a tombstone with every encoder. */
export function encodeValue(value: unknown, encoder: KafkaEncoder): Buffer | string | null {
  if (value === null || value === undefined) return null;
  const isBytes = value instanceof Uint8Array || value instanceof ArrayBuffer;
  switch (encoder) {
    case "auto":
      if (isBytes) return bytes(value);
      return typeof value === "string" ? value : JSON.stringify(value);
    case "bytes":
      if (isBytes) return bytes(value);
      break;
    case "text":
      if (typeof value === "string") return value;
      if (["number", "boolean", "bigint"].includes(typeof value)) return String(value);
      break;
    case "json": {
      const text = JSON.stringify(value);
      if (text !== undefined) return text;
      break;
    }
  }
  throw new TypeError(
    `Cannot encode record for Kafka: value is ${
      typeOf(value)
    }, not what encoder "${encoder}" takes`,
  );
}

/** Builds one kafkajs message. */
export function encodeRecord(
  record: StreamRecord<unknown>,
  encoder: KafkaEncoder,
  key: string | undefined,
  partitionHeader: string,
): kafkajs.Message {
  const headers: Record<string, string> = {};
  let partition: number | undefined;
  for (const [name, value] of Object.entries(record.headers ?? {})) {
    if (name === partitionHeader) {
      partition = Number(value);
      if (!Number.isInteger(partition) || partition < 0) {
        throw new RangeError(
          `Cannot route record to a Kafka partition: header "${name}" is ${JSON.stringify(value)}`,
        );
      }
    } else if (!SOURCE_HEADERS.has(name)) headers[name] = String(value);
  }
  const message: kafkajs.Message = { key: key ?? null, value: encodeValue(record.value, encoder) };
  if (Number.isFinite(record.ts)) message.timestamp = String(Math.trunc(record.ts));
  if (Object.keys(headers).length > 0) message.headers = headers;
  if (partition !== undefined) message.partition = partition;
  return message;
}
