import { inMemoryState } from "./_memory_state.ts";

/**
 * Where stateful stages keep their checkpoints: keyed state per partition, so it can be restored
 * when an instance restarts and moved when partitions change owner.
 *
 * @module
 */

/**
 * The two calls the runtime needs from a state store. Every `Store` of `stores/` fits (Deno KV,
 * Redis, MongoDB, memory), so state can live on the embedded default or be shared by processes.
 */
export interface StateBackend {
  /** Reads values; `undefined` for absent keys, in the order of `keys`. */
  getMany(keys: readonly string[]): Promise<unknown[]>;
  /** Writes values durably (resolves once they are stored). */
  setMany(entries: Iterable<readonly [string, unknown]>): Promise<void>;
}

/**
 * A state backend in the main thread's memory: survives instance restarts and rescaling, not the
 * process. The default when a pipeline names none.
 *
 * @returns The backend; `size` tells how many keys it holds.
 *
 * @example
 * ```ts
 * import { memoryStateBackend } from "@sluice/sluice";
 * import assert from "node:assert/strict";
 *
 * const state = memoryStateBackend();
 * await state.setMany([["a", 1]]);
 * assert.deepEqual(await state.getMany(["a", "b"]), [1, undefined]);
 * ```
 */
export function memoryStateBackend(): StateBackend & { readonly size: number } {
  return inMemoryState(true);
}
