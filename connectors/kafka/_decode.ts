// Kafka message → StreamRecord: key as UTF-8 text, value per decoder, ts from the message
// timestamp, headers as strings plus the message's coordinates (kafka.topic, kafka.partition,
// kafka.offset) so a dead letter says where the message came from.
import type { StreamRecord } from "../../actors/record.ts";
import type { kafkajs } from "./_deps.ts";
import { decodeHeaders } from "./_client.ts";

/** How message values are decoded: raw bytes, UTF-8 text or JSON. */
export type KafkaDecoder = "bytes" | "text" | "json";

/** A decoded message, or one that could not be decoded and must be dead-lettered. */
export type Decoded =
  | { record: StreamRecord<unknown> }
  | { record: StreamRecord<unknown>; reason: string };

const lenient = new TextDecoder();
const strict = new TextDecoder("utf-8", { fatal: true });

/** Decodes one message; never throws (a bad value comes back with a `reason`). */
export function decodeMessage(
  message: kafkajs.KafkaMessage,
  topic: string,
  partition: number,
  decoder: KafkaDecoder,
): Decoded {
  const headers = decodeHeaders(message.headers);
  headers["kafka.topic"] = topic;
  headers["kafka.partition"] = String(partition);
  headers["kafka.offset"] = message.offset;
  const key = message.key == null ? undefined : lenient.decode(message.key);
  const ts = Number(message.timestamp);
  const raw = message.value;
  const base = key === undefined ? { ts, headers } : { key, ts, headers };
  if (raw == null) return { record: { ...base, value: null } };
  // A copy with its own ArrayBuffer: kafkajs values are views into the whole fetch response,
  // which structured clone would otherwise copy along with every record.
  if (decoder === "bytes") return { record: { ...base, value: new Uint8Array(raw) } };
  let text: string;
  try {
    text = strict.decode(raw);
  } catch {
    return {
      record: { ...base, value: lenient.decode(raw) },
      reason: `Cannot decode Kafka message at ${topic}/${partition}@${message.offset}: ` +
        `value is not valid UTF-8`,
    };
  }
  if (decoder === "text") return { record: { ...base, value: text } };
  try {
    return { record: { ...base, value: JSON.parse(text) } };
  } catch (error) {
    return {
      record: { ...base, value: text },
      reason: `Cannot decode Kafka message at ${topic}/${partition}@${message.offset}: ` +
        `value is not JSON (${(error as Error).message})`,
    };
  }
}
