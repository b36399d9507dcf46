/**
 * Stores: one {@linkcode Store} interface with four backends — Deno KV (the embedded default),
 * Redis, MongoDB and memory — {@linkcode openStore} to open one from a plain descriptor (as
 * stages do in their workers), and the sink that writes records into a store.
 *
 * @module
 */
export type { Store, StoreSetOptions } from "./store.ts";
export * from "./kv/mod.ts";
export * from "./redis/mod.ts";
export * from "./mongo/mod.ts";
export * from "./memory/mod.ts";
export { openStore, type StoreDescriptor, storePermissions } from "./open_store.ts";
export * from "./store_sink.ts";
