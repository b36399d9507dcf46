/**
 * The Redis store (ioredis, loaded on first use): standalone or cluster, TLS, values or hashes.
 *
 * @module
 */
export { RedisStore, type RedisStoreOptions } from "./redis_store.ts";
