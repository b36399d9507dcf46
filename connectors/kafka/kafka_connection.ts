/**
 * Connection options shared by the Kafka source and sink (brokers, TLS, SASL) and the least
 * worker permissions a Kafka stage needs.
 *
 * @module
 */
import type { StagePermissions } from "../../actors/stage.ts";

/** TLS options passed through to kafkajs (`tls.connect` options; PEM strings, not file paths). */
export interface KafkaTlsOptions {
  /** Trusted CA certificates (PEM). Default: the system's roots. */
  ca?: string | string[];
  /** Client certificate chain (PEM), for mutual TLS. */
  cert?: string | string[];
  /** Client private key (PEM), for mutual TLS. */
  key?: string | string[];
  /** Passphrase of `key`. */
  passphrase?: string;
  /** Server name for SNI and certificate checks. Default: the broker's host. */
  servername?: string;
  /** Whether to reject brokers whose certificate does not verify. Default true. */
  rejectUnauthorized?: boolean;
}

/** SASL authentication passed through to kafkajs. */
export interface KafkaSaslOptions {
  /** Mechanism (`plain` needs TLS to keep the password off the wire). */
  mechanism: "plain" | "scram-sha-256" | "scram-sha-512";
  /** User name. */
  username: string;
  /** Password: handed to kafkajs only, never logged nor put in an error message. */
  password: string;
}

/** Connection options common to the Kafka source and sink. */
export interface KafkaConnectionOptions {
  /** Bootstrap brokers, `host:port` (an array, or one comma-separated string). */
  brokers: string[] | string;
  /** kafkajs client id. Default `"sluice"`. */
  clientId?: string;
  /** `true` for TLS with the system's roots, or TLS options. Default: plaintext. */
  ssl?: boolean | KafkaTlsOptions;
  /** SASL authentication. Default: none. */
  sasl?: KafkaSaslOptions;
  /** Time to establish a connection, ms. Default 3000. */
  connectionTimeoutMs?: number;
  /** Time a request may take before it fails, ms. Default 30 000. */
  requestTimeoutMs?: number;
}

/** Environment variables kafkajs reads when it loads; a worker without them fails NotCapable. */
export const KAFKAJS_ENV: readonly string[] = Object.freeze([
  "NODE_ENV",
  "KAFKAJS_LOG_LEVEL",
  "KAFKAJS_NO_PARTITIONER_WARNING",
  "KAFKAJS_DEBUG_PROTOCOL_BUFFERS",
  "KAFKAJS_DEBUG_EXTENDED_PROTOCOL_BUFFERS",
]);

/**
 * The least Deno permissions of a Kafka stage's worker: network access to the brokers and read
 * access to the few environment variables kafkajs looks up. `kafkaSource()` and `kafkaSink()`
 * set them on their stage; when the brokers advertise other addresses than the bootstrap list
 * (`advertised.listeners`), pass those too.
 *
 * @param brokers Every `host:port` the client connects to (array or comma-separated).
 * @returns Permissions for a stage's `permissions` option.
 *
 * @example
 * ```ts
 * import { kafkaPermissions } from "@sluice/sluice";
 * import assert from "node:assert/strict";
 *
 * const p = kafkaPermissions("10.0.0.1:9092, 10.0.0.2:9092");
 * assert.deepEqual(typeof p === "object" && p.net, ["10.0.0.1:9092", "10.0.0.2:9092"]);
 * ```
 */
export function kafkaPermissions(brokers: string[] | string): StagePermissions {
  const list = (typeof brokers === "string" ? brokers.split(",") : brokers)
    .map((b) => b.trim())
    .filter((b) => b.length > 0);
  return { net: list, env: [...KAFKAJS_ENV] };
}
