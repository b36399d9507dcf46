/**
 * `flatMap`: turns each record's value into zero or more values.
 *
 * @module
 */
import { z } from "../actors/_deps.ts";
import { compileFn, type InlineFn, inlineFn } from "../actors/inline_fn.ts";
import type { StreamRecord } from "../actors/record.ts";
import { defineProcessor, type ProcessorDefinition } from "../actors/stage.ts";
import type { StageOptions, StageRef } from "../actors/stage_ref.ts";
import { inlineFnSchema, processorRef } from "./_config.ts";

const flatMapConfig: z.ZodType<{ fn: InlineFn }> = z.object({ fn: inlineFnSchema }).strict();

type FlatMapFn = (value: unknown, record: StreamRecord<unknown>) => unknown;

function expand(record: StreamRecord<unknown>, out: unknown): StreamRecord<unknown>[] {
  if (out === null || out === undefined) return [];
  if (typeof out !== "object" || !(Symbol.iterator in out) || typeof out === "string") {
    throw new TypeError(`Cannot flatMap record: fn returned ${typeof out}, not an iterable`);
  }
  const records: StreamRecord<unknown>[] = [];
  for (const value of out as Iterable<unknown>) records.push({ ...record, value });
  return records;
}

/**
 * The `flatMap` processor definition. Config: `{ fn: InlineFn }`, a function
 * `(value, record) => Iterable<newValue>` (may be async; `null`/`undefined` mean none). Each output
 * keeps the input's key, event time and headers. Returning a non-iterable fails the record.
 * Prefer the {@linkcode flatMap} builder.
 *
 * @example
 * ```ts
 * import { flatMapStage } from "@sluice/sluice";
 * import assert from "node:assert/strict";
 *
 * assert.equal(flatMapStage.name, "flatMap");
 * ```
 */
export const flatMapStage: ProcessorDefinition<unknown, unknown, { fn: InlineFn }> =
  defineProcessor({
    name: "flatMap",
    config: flatMapConfig,
    open(config) {
      const fn = compileFn<FlatMapFn>(config.fn);
      return {
        process(record) {
          const out = fn(record.value, record);
          if (out instanceof Promise) return out.then((o) => expand(record, o));
          return expand(record, out);
        },
      };
    },
  });

/**
 * Turns each value into zero or more values (an array or any iterable); each output keeps the
 * input's key, event time and headers.
 *
 * @param fn `(value, record) => Iterable<O>`, sync or async; it may use only its parameters and
 *   globals.
 * @param options Stage options.
 * @returns A stage reference for a pipeline.
 * @throws {TypeError} When `fn` is not a function or references outer variables.
 *
 * @example Splitting lines into words
 * ```ts
 * import { flatMap } from "@sluice/sluice";
 * import assert from "node:assert/strict";
 *
 * const words = flatMap((line: string) => line.split(/\s+/));
 * assert.equal(words.export, "flatMapStage");
 * ```
 */
export function flatMap<I, O>(
  fn: (value: I, record: StreamRecord<I>) => Iterable<O> | Promise<Iterable<O>>,
  options?: StageOptions,
): StageRef<I, O> {
  const config = { fn: inlineFn(fn, "flatMap") };
  return processorRef(flatMapStage, import.meta.url, "flatMapStage", config, options);
}
