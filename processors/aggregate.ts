/**
 * `aggregate`: running aggregates per key (count, sum, avg, min, max, distinctCount, topK,
 * reduce), emitted as a changelog: one updated result per input record.
 *
 * @module
 */
import { z } from "../actors/_deps.ts";
import { defineProcessor, type ProcessorDefinition } from "../actors/stage.ts";
import type { StageOptions, StageRef } from "../actors/stage_ref.ts";
import { processorRef } from "./_config.ts";
import { groupKey } from "./_fields.ts";
import {
  type Accumulators,
  aggregateSpecsSchema,
  compileAggregator,
  toWireSpecs,
} from "./_aggregator.ts";
import type { AggregateResults, AggregateSpecs, WireAggregateSpec } from "./aggregate_ops.ts";

/** What {@linkcode aggregate} emits for each input record: the key and the updated results. */
export type RunningAggregate<S extends AggregateSpecs> = { key?: string } & AggregateResults<S>;

/** Config of the {@linkcode aggregateStage} definition: the specs in wire form. */
export interface AggregateConfig {
  /** Named aggregates. */
  aggregate: Record<string, WireAggregateSpec>;
}

const aggregateConfig: z.ZodType<AggregateConfig> = z.object({
  aggregate: aggregateSpecsSchema.refine(
    (specs) => !("key" in specs),
    'The name "key" is reserved for the record key',
  ),
}).strict();

/**
 * The `aggregate` processor definition. Config: `{ aggregate: specs }` (reduce functions as
 * InlineFn). Stateful: the accumulators of each key live in keyed state (`"aggregate"`), so they
 * move with their partitions when the stage is rescaled. Prefer the {@linkcode aggregate} builder.
 *
 * @example
 * ```ts
 * import { aggregateStage } from "@sluice/sluice";
 * import assert from "node:assert/strict";
 *
 * assert.equal(aggregateStage.stateful, true);
 * ```
 */
export const aggregateStage: ProcessorDefinition<unknown, unknown, AggregateConfig> =
  defineProcessor({
    name: "aggregate",
    config: aggregateConfig,
    stateful: true,
    open(config) {
      const aggregator = compileAggregator(config.aggregate);
      return {
        process(record, ctx) {
          const state = ctx.keyed<Accumulators>("aggregate");
          const group = groupKey(record);
          const acc = state.get(group) ?? aggregator.init();
          aggregator.add(acc, record);
          state.set(group, acc);
          const value = { key: record.key, ...aggregator.results(acc) };
          if (record.key === undefined) delete value.key;
          return record.key === undefined
            ? { value, ts: record.ts }
            : { key: record.key, value, ts: record.ts };
        },
      };
    },
  });

/**
 * Keeps running aggregates per record key and emits the updated result for every input record
 * (a changelog, like a Kafka Streams KTable without caching): the output record has the input's
 * key and event time and the value `{ key, ...results }`. Records without a key share one
 * aggregate, apart from those keyed `""` (Kafka tells an empty key from no key). For one result
 * per period use {@linkcode window} with the same specs.
 *
 * Numeric ops skip values that are not finite numbers (see `aggregate_ops.ts`); a reducer that
 * throws fails its record, which is retried, then dead-lettered, leaving the aggregate unchanged.
 *
 * @param specs Named aggregates, e.g. `{ revenue: { op: "sum", field: "total" } }`.
 * @param options Stage options; key the input (for example with `mapRecord`) and use
 *   `parallelism` to spread keys over instances.
 * @returns A stage reference for a pipeline.
 * @throws {ConfigError} When a spec is invalid (the message names the path).
 * @throws {TypeError} When a reducer references outer variables.
 *
 * @example Revenue and order count per customer
 * ```ts
 * import { aggregate } from "@sluice/sluice";
 * import assert from "node:assert/strict";
 *
 * const ref = aggregate({
 *   revenue: { op: "sum", field: "total" },
 *   orders: { op: "count" },
 *   biggest: { op: "max", field: "total" },
 * });
 * assert.equal(ref.export, "aggregateStage");
 * assert.throws(
 *   () => aggregate({ revenue: { op: "sum" } as never }),
 *   /config\.aggregate\.revenue\.field/,
 * );
 * ```
 */
export function aggregate<I = unknown, S extends AggregateSpecs = AggregateSpecs>(
  specs: S,
  options?: StageOptions,
): StageRef<I, RunningAggregate<S>> {
  const config = { aggregate: toWireSpecs(specs) };
  return processorRef(aggregateStage, import.meta.url, "aggregateStage", config, options);
}
