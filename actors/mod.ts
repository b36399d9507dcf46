/**
 * The Sluice runtime: stage definitions, the pipeline builder, partitioning, errors and test
 * helpers.
 *
 * @module
 */
export * from "./record.ts";
export * from "./stage.ts";
export * from "./stage_ref.ts";
export * from "./errors.ts";
export * from "./partitioner.ts";
export * from "./keyed_state.ts";
export * from "./inline_fn.ts";
export * from "./pipeline.ts";
export * from "./dead_letter.ts";
export * from "./testing.ts";
export * from "./state_backend.ts";
