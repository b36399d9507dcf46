/**
 * Sluice: an actor-based stream runtime for Deno. Pipelines of sources, processors and sinks run
 * as actors in Web Workers with bounded mailboxes, credit-based backpressure and supervision.
 *
 * Run with `--unstable-kv --unstable-worker-options` when importing by URL.
 *
 * @example
 * ```ts
 * import { fromArray, map, testPipeline } from "@sluice/sluice";
 * import assert from "node:assert/strict";
 *
 * const { output } = await testPipeline(
 *   (flow) => flow.via(map((s: string) => s.toUpperCase())),
 *   [{ value: "a", ts: 0 }],
 * );
 * assert.equal(output[0]?.value, "A");
 * assert.equal(fromArray([]).kind, "source");
 * ```
 *
 * @module
 */
export * from "./actors/mod.ts";
export * from "./processors/mod.ts";
export * from "./connectors/mod.ts";
export * from "./stores/mod.ts";
