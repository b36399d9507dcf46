/**
 * `storeSink`: a sink stage that writes records into any store (Deno KV, Redis, MongoDB, memory),
 * one batched write per batch; `kvSink` is its Deno KV shorthand.
 *
 * @module
 */
import { z } from "../actors/_deps.ts";
import { parseConfig } from "../actors/_config.ts";
import { compileFn, type InlineFn, inlineFn } from "../actors/inline_fn.ts";
import type { StreamRecord } from "../actors/record.ts";
import { defineSink, type SinkDefinition } from "../actors/stage.ts";
import type { StageOptions, StageRef } from "../actors/stage_ref.ts";
import { normalizeDescriptor, storeDescriptorSchema } from "./_descriptor.ts";
import { fold, getField, type KeyFn } from "./_sink_fold.ts";
import { addTo, mergeInto } from "./_store_writes.ts";
import { openStore, type StoreDescriptor, storePermissions } from "./open_store.ts";

/** How a record changes the entry at its key. */
export type StoreSinkMode = "set" | "merge" | "increment";

/** Config of the {@linkcode storeSinkStage} definition (what {@linkcode storeSink} builds). */
export interface StoreSinkConfig {
  /** The store to open in the sink's worker. */
  store: StoreDescriptor;
  /** Field path of the key in the value, or an inline function; default: the record's `key`. */
  key?: string | InlineFn;
  /** See {@linkcode StoreSinkOptions.mode}. */
  mode: StoreSinkMode;
  /** See {@linkcode StoreSinkOptions.field}. */
  field?: string;
  /** Time to live of written entries, ms. Default: none. */
  ttlMs?: number;
}

const storeSinkConfig: z.ZodType<StoreSinkConfig> = z.object({
  store: storeDescriptorSchema,
  key: z.union([z.string().min(1), z.object({ fn: z.string().min(1) }).strict()]).optional(),
  mode: z.enum(["set", "merge", "increment"]),
  field: z.string().min(1).optional(),
  ttlMs: z.number().positive().finite().optional(),
}).strict();

/**
 * The store sink definition. It opens the store its config describes inside its worker; for each
 * batch it computes every record's key and contribution, folds contributions to the same key in
 * record order, and writes them with one `setMany` (`"set"`), `mergeMany` (`"merge"`) or
 * `incrementMany` (`"increment"`), each atomic per key. The write resolves once the
 * store acknowledged it; connection faults throw `RetriableError`, so the runtime retries while
 * holding the pipeline back. Records without a usable key or value are dead-lettered once the
 * batch is written. Prefer the {@linkcode storeSink} builder.
 *
 * @example
 * ```ts
 * import { storeSinkStage } from "@sluice/sluice";
 * import assert from "node:assert/strict";
 *
 * assert.equal(storeSinkStage.kind, "sink");
 * ```
 */
export const storeSinkStage: SinkDefinition<unknown, StoreSinkConfig> = defineSink({
  name: "storeSink",
  config: storeSinkConfig,
  async open(config) {
    const store = await openStore(config.store);
    const keyOf: KeyFn = config.key === undefined
      ? (_, r) => r.key
      : typeof config.key === "string"
      ? ((path) => (v) => getField(v, path))(config.key)
      : compileFn<KeyFn>(config.key);
    const { mode, field } = config;
    const ttl = config.ttlMs === undefined ? {} : { ttlMs: config.ttlMs };
    return {
      async write(records, ctx) {
        const { entries, bad } = fold(records, { keyOf, mode, field });
        if (mode === "set") await store.setMany(entries, ttl);
        else if (mode === "merge") {
          await mergeInto(store, entries as Map<string, Record<string, unknown>>, ttl);
        } else await addTo(store, entries as Map<string, number>, ttl);
        // Only now: a failed write is retried, and dead letters must not be sent twice.
        for (const [record, reason] of bad) ctx.deadLetter(record, reason);
      },
      close: () => store.close(),
    };
  },
});

/** Options of {@linkcode storeSink}. */
export interface StoreSinkOptions<T = unknown> {
  /**
   * Where each record's key comes from: a field path of the value (`"sku"`, `"customer.id"`), or
   * an inline function `(value, record) => string` that closes over nothing. Default: the
   * record's `key`. Records whose key is not a string (or finite number) are dead-lettered.
   */
  key?: string | ((value: T, record: StreamRecord<T>) => string | number);
  /**
   * - `"set"` (default): the entry becomes the value (or its `field`). Idempotent: a replayed
   *   batch writes the same.
   * - `"merge"`: the value (or its `field`), a plain object, is shallow-merged into the entry.
   *   Idempotent.
   * - `"increment"`: the value (or its `field`), a finite number, is added to the entry. A batch
   *   replayed after a crash between its write and its ack is added again (at-least-once).
   */
  mode?: StoreSinkMode;
  /** Field path of the part of the value to write (or to add). Default: the whole value. */
  field?: string;
  /** Time to live of written entries, ms. Default: none. */
  ttlMs?: number;
}

/**
 * A sink that writes records into a store. The sink runs in a worker, so it takes a descriptor
 * of the store, not a Store object, and opens the store there with the least permissions it
 * needs (`storePermissions`). A `{ backend: "memory" }` store lives in the sink's worker: only an
 * inline pipeline's sink can share a named memory store with the main thread.
 *
 * @param store The store to write to, e.g. `{ backend: "redis", url: "redis://cache:6379" }`.
 * @param options Key, mode, field, TTL.
 * @param stageOptions Stage options (name, parallelism, permissions, ...).
 * @returns A sink reference for a pipeline.
 * @throws {ConfigError} When the options are invalid (the message names the path).
 * @throws {TypeError} When `key` is a function that references outer variables.
 *
 * @example Counts per word into a named memory store (inline mode)
 * ```ts
 * import { fromArray, MemoryStore, pipeline, storeSink } from "@sluice/sluice";
 * import assert from "node:assert/strict";
 *
 * await pipeline({ mode: "inline", signals: false })
 *   .from(fromArray(["a", "b", "a"].map((w, ts) => ({ key: w, value: 1, ts }))))
 *   .to(storeSink({ backend: "memory", name: "words" }, { mode: "increment" }))
 *   .run();
 * await using words = new MemoryStore({ name: "words" });
 * assert.deepEqual(await words.getMany(["a", "b"]), [2, 1]);
 * ```
 */
export function storeSink<T = unknown>(
  store: StoreDescriptor,
  options: StoreSinkOptions<T> = {},
  stageOptions: StageOptions = {},
): StageRef<T, never> {
  const { key, mode = "set", ...rest } = options;
  const config = {
    store,
    mode,
    ...rest,
    ...(key === undefined
      ? {}
      : { key: typeof key === "function" ? inlineFn(key, "storeSink key") : key }),
  };
  const parsed = parseConfig(storeSinkStage, stageOptions.name ?? "storeSink", config);
  config.store = normalizeDescriptor(parsed.store);
  return {
    kind: "sink",
    module: import.meta.url,
    export: "storeSinkStage",
    config,
    options: { permissions: storePermissions(config.store), ...stageOptions },
  };
}

/** Options of {@linkcode kvSink}. */
export interface KvSinkOptions<T = unknown> extends StoreSinkOptions<T> {
  /** Database path, or `":memory:"`. Default `".sluice/sluice.kv"`. */
  path?: string;
  /** Store namespace. Default `[]`. */
  namespace?: string[];
}

/**
 * A sink that writes records into a {@linkcode KvStore} file: `storeSink({ backend: "kv", path,
 * namespace }, options)`. Its worker may read and write that file only (the builder creates the
 * file's directory, as the worker may not). Read the results back with `KvStore.open(path)`.
 *
 * @param options Path, namespace, key, mode, field, TTL.
 * @param stageOptions Stage options (name, parallelism, ...).
 * @returns A sink reference for a pipeline.
 * @throws {ConfigError} When the options are invalid (the message names the path).
 * @throws {TypeError} When `key` is a function that references outer variables.
 *
 * @example Revenue per SKU
 * ```ts
 * import { fromArray, KvStore, kvSink, pipeline } from "@sluice/sluice";
 * import assert from "node:assert/strict";
 *
 * const path = `${await Deno.makeTempDir()}/results.kv`;
 * await pipeline({ mode: "inline", signals: false })
 *   .from(fromArray([
 *     { value: { sku: "pen", revenue: 3 }, ts: 0 },
 *     { value: { sku: "pen", revenue: 4 }, ts: 1 },
 *   ]))
 *   .to(kvSink({ path, key: "sku", mode: "increment", field: "revenue" }))
 *   .run();
 * await using store = await KvStore.open(path);
 * assert.equal(await store.get("pen"), 7);
 * ```
 */
export function kvSink<T = unknown>(
  options: KvSinkOptions<T> = {},
  stageOptions: StageOptions = {},
): StageRef<T, never> {
  const { path, namespace, ...rest } = options;
  const store: StoreDescriptor = {
    backend: "kv",
    ...(path === undefined ? {} : { path }),
    ...(namespace === undefined ? {} : { namespace }),
  };
  return storeSink(store, rest, stageOptions);
}
