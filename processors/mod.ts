/**
 * Processors: stateless record transforms (`filter`, `map`, `flatMap`, `mapRecord`, `transform`,
 * `clean`, `validate`), lookups in a store through a cache (`enrich`) and stateful operators
 * (`dedupe`, `sort`, `batch`, `rateLimit`, `window`, `aggregate`). Each builder returns a stage
 * reference validated at build time; each definition is what the runtime imports in the stage's
 * worker.
 *
 * @module
 */
export { filter, filterStage } from "./filter.ts";
export { map, mapStage } from "./map.ts";
export { flatMap, flatMapStage } from "./flat_map.ts";
export { mapRecord, mapRecordStage } from "./map_record.ts";
export {
  type Conversion,
  type JsonValue,
  transform,
  type TransformOptions,
  transformStage,
} from "./transform.ts";
export { clean, type CleanOptions, cleanStage } from "./clean.ts";
export { validate, type ValidateConfig, type ValidateOptions, validateStage } from "./validate.ts";
export { dedupe, type DedupeOptions, dedupeStage } from "./dedupe.ts";
export {
  enrich,
  type EnrichCacheOptions,
  type EnrichConfig,
  type EnrichOnMissing,
  type EnrichOptions,
  enrichStage,
} from "./enrich.ts";
export { sort, type SortKey, type SortOptions, sortStage } from "./sort.ts";
export { batch, type BatchOptions, batchStage } from "./batch.ts";
export { rateLimit, type RateLimitOptions, rateLimitStage } from "./rate_limit.ts";
export {
  window,
  type WindowCommon,
  type WindowConfig,
  type WindowLayout,
  type WindowOptions,
  type WindowResult,
  windowStage,
} from "./window.ts";
export {
  aggregate,
  type AggregateConfig,
  aggregateStage,
  type RunningAggregate,
} from "./aggregate.ts";
export type {
  AggregateResult,
  AggregateResults,
  AggregateSpec,
  AggregateSpecs,
  CountSpec,
  DistinctCountSpec,
  NumericSpec,
  ReduceSpec,
  TopKEntry,
  TopKSpec,
  WireAggregateSpec,
  WireReduceSpec,
} from "./aggregate_ops.ts";
