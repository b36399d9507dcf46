/**
 * Stores: one {@linkcode Store} interface with backends (Deno KV, the embedded default, for now),
 * and the sink that writes records into a store.
 *
 * @module
 */
export type { Store, StoreSetOptions } from "./store.ts";
export * from "./kv/mod.ts";
export * from "./store_sink.ts";
