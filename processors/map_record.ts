/**
 * `mapRecord`: rewrites whole records, key and event time included.
 *
 * @module
 */
import { z } from "../actors/_deps.ts";
import { compileFn, type InlineFn, inlineFn } from "../actors/inline_fn.ts";
import type { StreamRecord } from "../actors/record.ts";
import { defineProcessor, type ProcessorDefinition } from "../actors/stage.ts";
import type { StageOptions, StageRef } from "../actors/stage_ref.ts";
import { inlineFnSchema, processorRef } from "./_config.ts";

const mapRecordConfig: z.ZodType<{ fn: InlineFn }> = z.object({ fn: inlineFnSchema }).strict();

type MapRecordFn = (record: StreamRecord<unknown>) => unknown;

function check(out: unknown): StreamRecord<unknown> | undefined {
  if (out === null || out === undefined) return undefined;
  if (typeof out !== "object" || !("value" in out)) {
    throw new TypeError("Cannot map record: fn returned no record (expected { value, ts, key? })");
  }
  const record = out as StreamRecord<unknown>;
  if (typeof record.ts !== "number" || !Number.isFinite(record.ts)) {
    throw new TypeError(`Cannot map record: ts is ${String(record.ts)}, not a finite number`);
  }
  if (record.key !== undefined && typeof record.key !== "string") {
    throw new TypeError(`Cannot map record: key is ${typeof record.key}, not a string`);
  }
  return record;
}

/**
 * The `mapRecord` processor definition. Config: `{ fn: InlineFn }`, a function
 * `(record) => record | null` (may be async) that may change the key, event time, value and
 * headers; `null` or `undefined` drops the record. A result without a finite `ts` or with a
 * non-string key fails the record. Prefer the {@linkcode mapRecord} builder.
 *
 * @example
 * ```ts
 * import { mapRecordStage } from "@sluice/sluice";
 * import assert from "node:assert/strict";
 *
 * assert.equal(mapRecordStage.name, "mapRecord");
 * ```
 */
export const mapRecordStage: ProcessorDefinition<unknown, unknown, { fn: InlineFn }> =
  defineProcessor({
    name: "mapRecord",
    config: mapRecordConfig,
    open(config) {
      const fn = compileFn<MapRecordFn>(config.fn);
      return {
        process(record) {
          const out = fn(record);
          return out instanceof Promise ? out.then(check) : check(out);
        },
      };
    },
  });

/**
 * Rewrites whole records: re-key them, take event time from a field, add headers. Returning
 * `null` drops the record.
 *
 * @param fn `(record) => record | null`, sync or async; it may use only its parameters and
 *   globals.
 * @param options Stage options.
 * @returns A stage reference for a pipeline.
 * @throws {TypeError} When `fn` is not a function or references outer variables.
 *
 * @example Keying orders by customer and timing them by their own timestamp
 * ```ts
 * import { mapRecord } from "@sluice/sluice";
 * import assert from "node:assert/strict";
 *
 * const byCustomer = mapRecord((r: { value: { customer: string; at: number }; ts: number }) => ({
 *   key: r.value.customer,
 *   ts: r.value.at,
 *   value: r.value,
 * }));
 * assert.equal(byCustomer.export, "mapRecordStage");
 * ```
 */
export function mapRecord<I, O>(
  fn: (record: StreamRecord<I>) =>
    | StreamRecord<O>
    | null
    | undefined
    | Promise<
      StreamRecord<O> | null | undefined
    >,
  options?: StageOptions,
): StageRef<I, O> {
  const config = { fn: inlineFn(fn, "mapRecord") };
  return processorRef(mapRecordStage, import.meta.url, "mapRecordStage", config, options);
}
