/**
 * `filter`: keeps the records an inline predicate accepts.
 *
 * @module
 */
import { z } from "../actors/_deps.ts";
import { compileFn, type InlineFn, inlineFn } from "../actors/inline_fn.ts";
import type { StreamRecord } from "../actors/record.ts";
import { defineProcessor, type ProcessorDefinition } from "../actors/stage.ts";
import type { StageOptions, StageRef } from "../actors/stage_ref.ts";
import { inlineFnSchema, processorRef } from "./_config.ts";

const filterConfig: z.ZodType<{ fn: InlineFn }> = z.object({ fn: inlineFnSchema }).strict();

type Predicate = (value: unknown, record: StreamRecord<unknown>) => unknown;

/**
 * The `filter` processor definition. Config: `{ fn: InlineFn }`, a predicate
 * `(value, record) => boolean` (may be async); truthy keeps the record. Records filtered out count
 * as done for acknowledgement. Prefer the {@linkcode filter} builder.
 *
 * @example
 * ```ts
 * import { filterStage } from "@sluice/sluice";
 * import assert from "node:assert/strict";
 *
 * assert.equal(filterStage.name, "filter");
 * ```
 */
export const filterStage: ProcessorDefinition<unknown, unknown, { fn: InlineFn }> = defineProcessor(
  {
    name: "filter",
    config: filterConfig,
    open(config) {
      const fn = compileFn<Predicate>(config.fn);
      return {
        process(record) {
          const keep = fn(record.value, record);
          if (keep instanceof Promise) return keep.then((k) => (k ? record : undefined));
          return keep ? record : undefined;
        },
      };
    },
  },
);

/**
 * Keeps the records whose value passes `fn`. A type-guard predicate narrows the output type.
 *
 * @param fn `(value, record) => boolean`, sync or async; it may use only its parameters and
 *   globals.
 * @param options Stage options.
 * @returns A stage reference for a pipeline.
 * @throws {TypeError} When `fn` is not a function or references outer variables.
 *
 * @example Keeping large orders
 * ```ts
 * import { filter } from "@sluice/sluice";
 * import assert from "node:assert/strict";
 *
 * const large = filter((o: { total: number }) => o.total >= 100);
 * assert.equal(large.export, "filterStage");
 * ```
 */
export function filter<I, O extends I>(
  fn: (value: I, record: StreamRecord<I>) => value is O,
  options?: StageOptions,
): StageRef<I, O>;
/**
 * Keeps the records whose value passes `fn` (sync or async predicate).
 *
 * @param fn `(value, record) => boolean | Promise<boolean>`; it may use only its parameters and
 *   globals.
 * @param options Stage options.
 * @returns A stage reference for a pipeline.
 * @throws {TypeError} When `fn` is not a function or references outer variables.
 *
 * @example Keeping records with a key
 * ```ts
 * import { filter } from "@sluice/sluice";
 * import assert from "node:assert/strict";
 *
 * const keyed = filter(async (_v: unknown, r) => await Promise.resolve(r.key !== undefined));
 * assert.equal(keyed.kind, "processor");
 * ```
 */
export function filter<I>(
  fn: (value: I, record: StreamRecord<I>) => boolean | Promise<boolean>,
  options?: StageOptions,
): StageRef<I, I>;
export function filter<I>(
  fn: (value: I, record: StreamRecord<I>) => boolean | Promise<boolean>,
  options?: StageOptions,
): StageRef<I, I> {
  const config = { fn: inlineFn(fn, "filter") };
  return processorRef(filterStage, import.meta.url, "filterStage", config, options);
}
