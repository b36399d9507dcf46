/**
 * The memory store: an LRU with entry and byte limits and TTL, in the thread that opens it.
 *
 * @module
 */
export { MemoryStore, type MemoryStoreOptions } from "./memory_store.ts";
