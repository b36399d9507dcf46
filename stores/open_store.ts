/**
 * `openStore`: a {@linkcode Store} from a plain, cloneable descriptor — how sinks and `enrich`
 * get their store in a worker, where no Store object can be sent.
 *
 * @module
 */
import type { StagePermissions } from "../actors/stage.ts";
import { mongoHosts, redisHost } from "./_hosts.ts";
import { DEFAULT_KV_PATH, KvStore, type KvStoreOptions } from "./kv/kv_store.ts";
import { MemoryStore, type MemoryStoreOptions } from "./memory/memory_store.ts";
import { MONGODB_ENV } from "./mongo/_client.ts";
import { MongoStore, type MongoStoreOptions } from "./mongo/mongo_store.ts";
import { RedisStore, type RedisStoreOptions } from "./redis/redis_store.ts";
import type { Store } from "./store.ts";

/**
 * Which store to open, and how: the backend plus that backend's options. It is plain data
 * (structured-cloneable), so it can travel to a stage's worker.
 *
 * - `{ backend: "kv", path?, namespace? }`: a Deno KV file (default `.sluice/sluice.kv`).
 * - `{ backend: "redis", url?, cluster?, keyPrefix?, layout?, … }`: see `RedisStoreOptions`.
 * - `{ backend: "mongo", url?, db?, collection?, … }`: see `MongoStoreOptions`.
 * - `{ backend: "memory", name?, maxEntries?, maxBytes?, ttlMs? }`: memory of the thread that
 *   opens it — in workers mode, each worker has its own.
 */
export type StoreDescriptor =
  | ({ backend: "kv"; path?: string } & KvStoreOptions)
  | ({ backend: "redis" } & RedisStoreOptions)
  | ({ backend: "mongo" } & MongoStoreOptions)
  | ({ backend: "memory" } & Omit<MemoryStoreOptions, "now">);

/**
 * Opens the store a descriptor names. Vendor clients (ioredis, mongodb) load on first use.
 *
 * @param descriptor The backend and its options.
 * @returns The open store; close it when done.
 * @throws {SluiceError} `E_STORE` when the server or file cannot be opened.
 * @throws {TypeError} When the backend is unknown.
 *
 * @example
 * ```ts
 * import { openStore } from "@sluice/sluice";
 * import assert from "node:assert/strict";
 *
 * const store = await openStore({ backend: "kv", path: ":memory:" });
 * await store.set("a", 1);
 * assert.equal(await store.get("a"), 1);
 * await store.close();
 * ```
 */
export async function openStore(descriptor: StoreDescriptor): Promise<Store> {
  switch (descriptor.backend) {
    case "kv": {
      const { backend: _, path = DEFAULT_KV_PATH, ...options } = descriptor;
      return await KvStore.open(path, options);
    }
    case "redis": {
      const { backend: _, ...options } = descriptor;
      return await RedisStore.open(options);
    }
    case "mongo": {
      const { backend: _, ...options } = descriptor;
      return await MongoStore.open(options);
    }
    case "memory": {
      const { backend: _, ...options } = descriptor;
      return new MemoryStore(options);
    }
    default:
      throw new TypeError(
        `Cannot open store: backend ${
          JSON.stringify((descriptor as { backend?: unknown }).backend)
        } is not kv, redis, mongo or memory`,
      );
  }
}

/**
 * The least Deno permissions a worker needs to open a store:
 *
 * - kv: read + write on the file (none for `":memory:"`);
 * - redis: `net` to the server (or the cluster's seed nodes; any host, since a cluster hands out
 *   the others) and `env` (ioredis's `debug` dependency lists the environment when it loads);
 * - mongo: `net` to the hosts of the URL (any host for `mongodb+srv://`), `env` for the variables
 *   the driver looks up, `sys: ["osRelease"]` for its handshake;
 * - memory: none.
 *
 * TLS files named in client options need `read` on top (pass `permissions` in the stage options).
 *
 * @param descriptor The store.
 * @returns Permissions for a stage's `permissions` option.
 *
 * @example
 * ```ts
 * import { storePermissions } from "@sluice/sluice";
 * import assert from "node:assert/strict";
 *
 * assert.deepEqual(storePermissions({ backend: "redis", url: "redis://:pw@cache:6380" }), {
 *   net: ["cache:6380"],
 *   env: true,
 * });
 * assert.equal(storePermissions({ backend: "memory" }), "none");
 * ```
 */
export function storePermissions(descriptor: StoreDescriptor): StagePermissions {
  switch (descriptor.backend) {
    case "kv": {
      const path = descriptor.path ?? DEFAULT_KV_PATH;
      return path === ":memory:" ? "none" : { read: [path], write: [path] };
    }
    case "redis": {
      if (descriptor.cluster) return { net: true, env: true };
      const host = redisHost(descriptor.url ?? "redis://127.0.0.1:6379");
      return { net: host ? [host] : true, env: true };
    }
    case "mongo": {
      const hosts = mongoHosts(descriptor.url ?? "mongodb://127.0.0.1:27017");
      return { net: hosts ?? true, env: [...MONGODB_ENV], sys: ["osRelease"] };
    }
    default:
      return "none";
  }
}
