// Shared by the Kafka source and sink: connection config (brokers, TLS, SASL) as zod fields, the
// kafkajs client factory, header decoding and the classification of kafkajs errors. Credentials
// are passed to kafkajs and never put in messages.
import { z } from "../../actors/_deps.ts";
import type { KafkaSaslOptions, KafkaTlsOptions } from "./kafka_connection.ts";
import { type kafkajs, loadKafkajs } from "./_deps.ts";

/** {@linkcode KafkaConnectionOptions} as validated: brokers split, defaults applied. */
export interface KafkaConnection {
  brokers: string[];
  clientId: string;
  ssl?: boolean | KafkaTlsOptions;
  sasl?: KafkaSaslOptions;
  connectionTimeoutMs: number;
  requestTimeoutMs: number;
}

const pem = z.union([z.string(), z.array(z.string())]);

/** zod fields of {@linkcode KafkaConnectionOptions}, to spread into a connector's schema. */
export const connectionFields = {
  brokers: z.union([z.string(), z.array(z.string())])
    .transform((b) => (typeof b === "string" ? b.split(",") : b).map((x) => x.trim()))
    .pipe(
      z.array(z.string().regex(/^[^\s:]+:\d{1,5}$/, "expected host:port")).min(
        1,
        "expected at least one broker",
      ),
    ),
  clientId: z.string().min(1).default("sluice"),
  ssl: z.union([
    z.boolean(),
    z.object({
      ca: pem.optional(),
      cert: pem.optional(),
      key: pem.optional(),
      passphrase: z.string().optional(),
      servername: z.string().optional(),
      rejectUnauthorized: z.boolean().optional(),
    }).strict(),
  ]).optional(),
  sasl: z.object({
    mechanism: z.enum(["plain", "scram-sha-256", "scram-sha-512"]),
    username: z.string(),
    password: z.string(),
  }).strict().optional(),
  connectionTimeoutMs: z.number().int().safe().positive().default(3000),
  requestTimeoutMs: z.number().int().safe().positive().default(30_000),
};

/** A kafkajs client for a validated connection. Logging is off: errors surface as throws. */
export async function createKafka(
  c: KafkaConnection,
  retry: { retries: number; initialRetryTime: number; maxRetryTime: number },
): Promise<kafkajs.Kafka> {
  const { Kafka, logLevel } = await loadKafkajs();
  return new Kafka({
    brokers: c.brokers,
    clientId: c.clientId,
    ssl: c.ssl,
    sasl: c.sasl as kafkajs.SASLOptions | undefined,
    connectionTimeout: c.connectionTimeoutMs,
    requestTimeout: c.requestTimeoutMs,
    retry,
    logLevel: logLevel.NOTHING,
  });
}

type HeaderValue = string | Uint8Array | (string | Uint8Array | undefined)[] | undefined;

const utf8 = new TextDecoder();

/** Kafka headers as strings (UTF-8); of a repeated header the last value wins. */
export function decodeHeaders(
  headers: Record<string, HeaderValue> | undefined,
): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [name, raw] of Object.entries(headers ?? {})) {
    const value = Array.isArray(raw) ? raw[raw.length - 1] : raw;
    if (value === undefined) continue;
    out[name] = typeof value === "string" ? value : utf8.decode(value);
  }
  return out;
}

/** The error kafkajs reported first: retries-exceeded errors wrap the real one. */
function rootCause(error: unknown): unknown {
  let e = error;
  for (let i = 0; i < 5; i++) {
    const cause = (e as { cause?: unknown; originalError?: unknown } | null)?.cause ??
      (e as { originalError?: unknown } | null)?.originalError;
    if (!cause || cause === e) break;
    e = cause;
  }
  return e;
}

/** Broker error types that reject the records themselves, not the connection. */
const RECORD_ERRORS = new Set([
  "MESSAGE_TOO_LARGE",
  "RECORD_LIST_TOO_LARGE",
  "INVALID_RECORD",
  "INVALID_TIMESTAMP",
  "CORRUPT_MESSAGE",
]);

/** Whether a kafkajs error is about the records sent (too large, invalid) rather than the link. */
export function isRecordError(error: unknown): boolean {
  const type = (rootCause(error) as { type?: unknown } | null)?.type;
  return typeof type === "string" && RECORD_ERRORS.has(type);
}

/** A kafkajs error's one-line message (kafkajs never includes SASL passwords in them). */
export function kafkaMessage(error: unknown): string {
  const root = rootCause(error) as { message?: unknown } | null;
  const top = (error as { message?: unknown } | null)?.message;
  const text = String(root?.message ?? top ?? error);
  return text.replace(/\s+/g, " ").trim();
}

/** Whether a kafkajs error means a group rebalance is under way (commits may then fail). */
export function isRebalanceError(error: unknown): boolean {
  const type = (error as { type?: unknown } | null)?.type;
  return type === "REBALANCE_IN_PROGRESS" || type === "ILLEGAL_GENERATION" ||
    type === "NOT_COORDINATOR_FOR_GROUP" || type === "UNKNOWN_MEMBER_ID";
}
