/**
 * The unit of data that flows through a pipeline.
 *
 * @module
 */

/**
 * A record: a value with an optional key (used for partitioning), its event time and headers.
 * Values must be structured-cloneable: they cross worker boundaries.
 *
 * @example A keyed record
 * ```ts
 * import type { StreamRecord } from "@sluice/sluice";
 * import assert from "node:assert/strict";
 *
 * const r: StreamRecord<{ sku: string }> = { key: "a1", value: { sku: "a1" }, ts: 0 };
 * assert.equal(r.key, "a1");
 * ```
 */
export interface StreamRecord<T = unknown> {
  /** Partitioning key; records with the same key go to the same instance of a keyed stage. */
  key?: string;
  /** The payload. */
  value: T;
  /** Event time in milliseconds since the epoch. */
  ts: number;
  /** Free-form metadata (Kafka headers, source coordinates). */
  headers?: Record<string, string>;
}
