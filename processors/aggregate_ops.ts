/**
 * The aggregate operations shared by {@linkcode aggregate} and {@linkcode window}: how to describe
 * them and what they produce.
 *
 * Numeric ops (`sum`, `avg`, `min`, `max`) use only finite numbers: a field that is missing,
 * `null`, `NaN`, `±Infinity`, a numeric string or any other type is skipped, so a bad value never
 * poisons a sum. Validate or `transform({ convert })` upstream to reject or coerce such records.
 *
 * @module
 */
import type { InlineFn } from "../actors/inline_fn.ts";
import type { StreamRecord } from "../actors/record.ts";
import type { JsonValue } from "./transform.ts";

/** `count`: the number of records, or of records whose `field` is not `null`/missing. */
export interface CountSpec {
  /** Operation. */
  op: "count";
  /** Count only records where this field is present and not `null`. Default: every record. */
  field?: string;
}

/** `sum`, `avg`, `min`, `max` of a numeric field; non-finite and non-number values are skipped. */
export interface NumericSpec {
  /** Operation. `avg`, `min` and `max` are `null` when no value was finite. */
  op: "sum" | "avg" | "min" | "max";
  /** Field path in the value, such as `"price"` or `"item.price"`. */
  field: string;
}

/** `distinctCount`: how many distinct non-null values `field` took (exact). */
export interface DistinctCountSpec {
  /** Operation. */
  op: "distinctCount";
  /** Field path in the value. */
  field: string;
}

/**
 * `topK`: the `k` most frequent non-null values of `field` (exact counts), or the `k` values with
 * the largest sum of `weight` (e.g. top products by revenue). Ties are broken by value.
 */
export interface TopKSpec {
  /** Operation. */
  op: "topK";
  /** Field path whose values are ranked. */
  field: string;
  /** How many to keep, 1–1000. */
  k: number;
  /** Rank by the sum of this numeric field instead of by occurrences. Default: occurrences. */
  weight?: string;
}

/**
 * `reduce`: a user reducer. `fn(acc, value, record)` returns the new accumulator, starting from a
 * copy of `initial`; `value` is the record's value, or its `field` when given. `merge(a, b)` joins
 * two accumulators and is required inside session windows (which merge). The functions run in a
 * worker, so they may use only their parameters and globals.
 */
export interface ReduceSpec<A extends JsonValue = JsonValue, V = unknown> {
  /** Operation. */
  op: "reduce";
  /** The reducer. */
  fn(acc: A, value: V, record: StreamRecord<unknown>): A;
  /** The starting accumulator (JSON, copied for every key and window). */
  initial: A;
  /** Joins two accumulators. Default: none (session windows reject the spec). */
  merge?(a: A, b: A): A;
  /** Reduce this field instead of the whole value. Default: the whole value. */
  field?: string;
}

/** One aggregate: an operation and its parameters. */
export type AggregateSpec =
  | CountSpec
  | NumericSpec
  | DistinctCountSpec
  | TopKSpec
  | ReduceSpec;

/** Wire form of a {@linkcode ReduceSpec}: its functions serialised for the worker. */
export interface WireReduceSpec {
  /** Operation. */
  op: "reduce";
  /** The reducer's source. */
  fn: InlineFn;
  /** The starting accumulator. */
  initial: JsonValue;
  /** The merge function's source. */
  merge?: InlineFn;
  /** Reduce this field instead of the whole value. */
  field?: string;
}

/** Wire form of an {@linkcode AggregateSpec}, as found in a stage config. */
export type WireAggregateSpec =
  | CountSpec
  | NumericSpec
  | DistinctCountSpec
  | TopKSpec
  | WireReduceSpec;

/** Named aggregates, e.g. `{ revenue: { op: "sum", field: "total" }, orders: { op: "count" } }`. */
export type AggregateSpecs = Record<string, AggregateSpec>;

/** An entry of a `topK` result. */
export interface TopKEntry {
  /** The field value. */
  value: unknown;
  /** Its occurrences, or the sum of its weights. */
  count: number;
}

/** What one aggregate spec produces. */
export type AggregateResult<S> = S extends { op: "count" | "sum" | "distinctCount" } ? number
  : S extends { op: "avg" | "min" | "max" } ? number | null
  : S extends { op: "topK" } ? TopKEntry[]
  : S extends { op: "reduce"; initial: infer A } ? A
  : unknown;

/** What a set of named aggregate specs produces, name by name. */
export type AggregateResults<S extends AggregateSpecs> = {
  [K in keyof S]: AggregateResult<S[K]>;
};
