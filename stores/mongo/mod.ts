/**
 * The MongoDB store (official driver, loaded on first use): one document per key.
 *
 * @module
 */
export { MongoStore, type MongoStoreOptions } from "./mongo_store.ts";
