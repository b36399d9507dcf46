/**
 * `map`: transforms each record's value with an inline function.
 *
 * @module
 */
import { z } from "../actors/_deps.ts";
import { compileFn, type InlineFn, inlineFn } from "../actors/inline_fn.ts";
import type { StreamRecord } from "../actors/record.ts";
import { defineProcessor, type ProcessorDefinition } from "../actors/stage.ts";
import type { StageOptions, StageRef } from "../actors/stage_ref.ts";
import { inlineFnSchema, processorRef } from "./_config.ts";

const mapConfig: z.ZodType<{ fn: InlineFn }> = z.object({ fn: inlineFnSchema }).strict();

type MapFn = (value: unknown, record: StreamRecord<unknown>) => unknown;

/**
 * The `map` processor definition. Config: `{ fn: InlineFn }`, a function
 * `(value, record) => newValue` (may be async). Key, event time and headers are kept; a throw
 * marks the record failed (retried, then dead-lettered). Prefer the {@linkcode map} builder.
 *
 * @example
 * ```ts
 * import { mapStage } from "@sluice/sluice";
 * import assert from "node:assert/strict";
 *
 * assert.equal(mapStage.name, "map");
 * ```
 */
export const mapStage: ProcessorDefinition<unknown, unknown, { fn: InlineFn }> = defineProcessor({
  name: "map",
  config: mapConfig,
  open(config) {
    const fn = compileFn<MapFn>(config.fn);
    return {
      process(record) {
        const out = fn(record.value, record);
        if (out instanceof Promise) return out.then((value) => ({ ...record, value }));
        return { ...record, value: out };
      },
    };
  },
});

/**
 * Transforms each record's value; key, event time and headers are kept.
 *
 * @param fn `(value, record) => newValue`, sync or async. It runs in a worker, so it may use only
 *   its parameters and globals.
 * @param options Stage options (name, parallelism, ...).
 * @returns A stage reference for a pipeline.
 * @throws {TypeError} When `fn` is not a function or references outer variables.
 *
 * @example Doubling numbers
 * ```ts
 * import { map } from "@sluice/sluice";
 * import assert from "node:assert/strict";
 *
 * const double = map((n: number) => n * 2, { name: "double" });
 * assert.equal(double.export, "mapStage");
 * assert.equal(double.options?.name, "double");
 * ```
 */
export function map<I, O>(
  fn: (value: I, record: StreamRecord<I>) => O | Promise<O>,
  options?: StageOptions,
): StageRef<I, O> {
  return processorRef(mapStage, import.meta.url, "mapStage", { fn: inlineFn(fn, "map") }, options);
}
