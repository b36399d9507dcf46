/**
 * The Deno KV store: Sluice's embedded default (a local file, no server).
 *
 * @module
 */
export { DEFAULT_KV_PATH, KvStore, type KvStoreOptions } from "./kv_store.ts";
