/**
 * `MemoryStore`: a {@linkcode Store} in the process's memory, an LRU with entry and byte limits
 * and TTL (on `lru-cache`).
 *
 * @module
 */
import { serialize } from "node:v8";
import { SluiceError } from "../../actors/errors.ts";
import {
  checkAmount,
  checkKey,
  checkTtl,
  compareKeys,
  isPlainObject,
  notCloneable,
} from "../_args.ts";
import { sizeBound } from "../kv/_codec.ts";
import type { Store, StoreSetOptions } from "../store.ts";
import { LRUCache } from "./_deps.ts";

/** Options of {@linkcode MemoryStore}. */
export interface MemoryStoreOptions {
  /**
   * Shares the entries with every store opened with the same name in this thread (a worker is a
   * thread of its own: each worker has its own named stores). The first store opened with a name
   * sets its limits. Default: a private store.
   */
  name?: string;
  /** Most entries; the least recently used go first. Default 100 000. */
  maxEntries?: number;
  /** Most bytes (V8-serialised size, estimated); the least recently used go first. Default: none. */
  maxBytes?: number;
  /** Time to live of entries written without `ttlMs`, ms. Default: none. */
  ttlMs?: number;
  /** The clock TTLs are measured with, ms. Default `Date.now`. */
  now?: () => number;
}

type Cache = LRUCache<string, { v: unknown }>;
const named = new Map<string, Cache>();

/**
 * A store in memory: an LRU cache bounded by entries and bytes, with a TTL per entry. Values are
 * copied with `structuredClone` on the way in and out, so callers never share them. Evicted and
 * expired entries are gone: as a state backend, size it to hold all the state.
 *
 * It lives in the thread that opened it: a sink or `enrich` given `{ backend: "memory" }` opens
 * one inside its worker, which the main thread cannot see (use a `name` to share one between
 * the stages of an inline pipeline and the test that reads it).
 *
 * @example LRU with a TTL
 * ```ts
 * import { MemoryStore } from "@sluice/sluice";
 * import assert from "node:assert/strict";
 *
 * let now = 0;
 * await using store = new MemoryStore({ maxEntries: 2, now: () => now });
 * await store.set("a", 1, { ttlMs: 100 });
 * await store.setMany([["b", 2], ["c", 3]]); // "a" is evicted: two entries at most
 * assert.deepEqual(await store.getMany(["a", "b", "c"]), [undefined, 2, 3]);
 * await store.set("d", 4, { ttlMs: 100 });
 * now = 101;
 * assert.equal(await store.get("d"), undefined);
 * ```
 */
export class MemoryStore implements Store, AsyncDisposable {
  readonly #cache: Cache;
  readonly #ttl: number | undefined;
  readonly #maxBytes: number | undefined;
  #closed = false;

  /**
   * Creates a store (or a handle on the named one).
   *
   * @param options Name, limits, default TTL, clock.
   * @throws {RangeError} When a limit or the TTL is not a positive number.
   */
  constructor(options: MemoryStoreOptions = {}) {
    const { name, maxEntries = 100_000, maxBytes, now = Date.now } = options;
    if (!Number.isInteger(maxEntries) || maxEntries < 1) {
      throw new RangeError(
        `Cannot open MemoryStore: maxEntries must be a positive integer, got ${maxEntries}`,
      );
    }
    if (maxBytes !== undefined && !(Number.isInteger(maxBytes) && maxBytes > 0)) {
      throw new RangeError(
        `Cannot open MemoryStore: maxBytes must be a positive integer, got ${maxBytes}`,
      );
    }
    this.#ttl = checkTtl(options.ttlMs, "open MemoryStore");
    const existing = name === undefined ? undefined : named.get(name);
    this.#cache = existing ?? new LRUCache<string, { v: unknown }>({
      max: maxEntries,
      ...(maxBytes === undefined ? {} : { maxSize: maxBytes, maxEntrySize: maxBytes }),
      // lru-cache takes a start time of 0 for "no TTL": an entry written while an injected clock
      // reads 0 would never expire.
      perf: { now: () => now() || Number.MIN_VALUE },
      ttlResolution: 0,
      ttlAutopurge: false,
      allowStale: false,
    });
    this.#maxBytes = this.#cache.maxSize > 0 ? this.#cache.maxSize : undefined;
    if (name !== undefined && existing === undefined) named.set(name, this.#cache);
  }

  /**
   * Creates a store, like `new MemoryStore(options)`, for symmetry with the other backends.
   *
   * @param options See {@linkcode MemoryStoreOptions}.
   * @returns The store.
   *
   * @example Two handles on one named store
   * ```ts
   * import { MemoryStore } from "@sluice/sluice";
   * import assert from "node:assert/strict";
   *
   * await using a = await MemoryStore.open({ name: "lookup" });
   * await using b = await MemoryStore.open({ name: "lookup" });
   * await a.set("k", { n: 1 });
   * assert.deepEqual(await b.get("k"), { n: 1 });
   * ```
   */
  static open(options: MemoryStoreOptions = {}): Promise<MemoryStore> {
    return settle(() => new MemoryStore(options));
  }

  /** Number of entries (expired ones not yet noticed included). */
  get size(): number {
    return this.#cache.size;
  }

  /** Reads one value; `undefined` when absent or expired. */
  get<T = unknown>(key: string): Promise<T | undefined> {
    return settle(() => {
      this.#open();
      const entry = this.#cache.get(checkKey(key, "get"));
      return entry === undefined ? undefined : structuredClone(entry.v) as T;
    });
  }

  /** Reads several values, in the order of `keys`. */
  getMany<T = unknown>(keys: readonly string[]): Promise<(T | undefined)[]> {
    return settle(() => {
      this.#open();
      return keys.map((key) => {
        const entry = this.#cache.get(checkKey(key, "get"));
        return entry === undefined ? undefined : structuredClone(entry.v) as T;
      });
    });
  }

  /**
   * Writes one value.
   *
   * @throws {RangeError} When `ttlMs` is not positive, or the value alone is over `maxBytes`.
   * @throws {TypeError} When the key is not a string.
   * @throws {DOMException} (DataCloneError) When the value is not structured-cloneable.
   */
  set(key: string, value: unknown, options: StoreSetOptions = {}): Promise<void> {
    return this.setMany([[key, value]], options);
  }

  /** Writes several values (all checked and copied before any is written). */
  setMany(
    entries: Iterable<readonly [string, unknown]>,
    options: StoreSetOptions = {},
  ): Promise<void> {
    return settle(() => {
      this.#open();
      const ttl = checkTtl(options.ttlMs, "set entry") ?? this.#ttl ?? 0;
      const ready = [...entries].map(([key, value]) => {
        checkKey(key, "set entry");
        return [key, copy(key, value), this.#bytes(key, value)] as const;
      });
      for (const [key, v, size] of ready) this.#cache.set(key, { v }, this.#sized({ ttl }, size));
    });
  }

  /** Deletes a key (absent is fine). */
  delete(key: string): Promise<void> {
    return settle(() => {
      this.#open();
      this.#cache.delete(checkKey(key, "delete"));
    });
  }

  /** Lists live entries whose key starts with `prefix`, in UTF-8 byte order of keys. */
  async *scan<T = unknown>(prefix = ""): AsyncIterableIterator<[string, T]> {
    this.#open();
    if (typeof prefix !== "string") throw new TypeError("Cannot scan: prefix is not a string");
    const keys = [...this.#cache.keys()].filter((k) => k.startsWith(prefix)).sort(compareKeys);
    for (const key of keys) {
      const entry = this.#cache.peek(key);
      if (entry !== undefined) yield [key, structuredClone(entry.v) as T];
    }
  }

  /**
   * Adds `by` to the number at `key` (absent counts as 0), keeping the entry's expiry.
   *
   * @throws {TypeError} When `by` is not finite or the stored value is not a number.
   */
  increment(key: string, by: number): Promise<number> {
    return settle(() => {
      this.#open();
      checkKey(key, "increment");
      return this.#add(key, checkAmount(by, key), undefined);
    });
  }

  /** Adds amounts to several keys (all checked first); with `ttlMs` they get that expiry. */
  incrementMany(
    entries: Iterable<readonly [string, number]>,
    options: StoreSetOptions = {},
  ): Promise<void> {
    return settle(() => {
      this.#open();
      const ttl = checkTtl(options.ttlMs, "increment");
      const list = [...entries].map(([k, by]) =>
        [checkKey(k, "increment"), checkAmount(by, k)] as const
      );
      for (const [key] of list) this.#current(key);
      for (const [key, by] of list) this.#add(key, by, ttl);
    });
  }

  /** Shallow-merges plain objects into the entries at their keys (all checked first). */
  mergeMany(
    entries: Iterable<readonly [string, Readonly<Record<string, unknown>>]>,
    options: StoreSetOptions = {},
  ): Promise<void> {
    return settle(() => {
      this.#open();
      const ttl = checkTtl(options.ttlMs, "merge") ?? this.#ttl ?? 0;
      const list = [...entries].map(([key, fields]) => {
        checkKey(key, "merge");
        if (!isPlainObject(fields)) {
          throw new TypeError(`Cannot merge into key "${key}": the fields are not a plain object`);
        }
        return [key, copy(key, fields)] as const;
      });
      const merged = new Map<string, Record<string, unknown>>();
      for (const [key, fields] of list) {
        const old = merged.get(key) ?? this.#cache.get(key)?.v;
        merged.set(key, { ...(isPlainObject(old) ? old : {}), ...fields });
      }
      const sized = [...merged].map(([key, v]) => [key, v, this.#bytes(key, v)] as const);
      for (const [key, v, size] of sized) this.#cache.set(key, { v }, this.#sized({ ttl }, size));
    });
  }

  /** Removes every entry of this store (of every handle, for a named one). */
  clear(): void {
    this.#cache.clear();
  }

  /** Closes this handle; the entries of a named store stay for the next handle. */
  close(): Promise<void> {
    this.#closed = true;
    return Promise.resolve();
  }

  /** Closes the store (for `await using`). */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  #add(key: string, by: number, ttl: number | undefined): number {
    const old = this.#current(key) as number | undefined;
    const v = (old ?? 0) + by;
    const size = this.#bytes(key, v);
    if (old !== undefined && ttl === undefined) {
      this.#cache.set(key, { v }, this.#sized({ noUpdateTTL: true }, size));
    } else this.#cache.set(key, { v }, this.#sized({ ttl: ttl ?? this.#ttl ?? 0 }, size));
    return v;
  }

  #current(key: string): unknown {
    const old = this.#cache.get(key)?.v;
    if (old !== undefined && typeof old !== "number") {
      throw new TypeError(`Cannot increment key "${key}": its value is not a number`);
    }
    return old;
  }

  #sized<O extends object>(options: O, size: number): O & { size?: number } {
    return this.#maxBytes === undefined ? options : { ...options, size };
  }

  /** Estimated bytes of an entry (an upper bound of its V8 size), checked against maxBytes. */
  #bytes(key: string, value: unknown): number {
    if (this.#maxBytes === undefined) return 1;
    let bytes = sizeBound(value, Infinity);
    if (bytes === Infinity) bytes = serialize(value).byteLength;
    bytes += 2 * key.length + 16;
    if (bytes > this.#maxBytes) {
      throw new RangeError(
        `Cannot set key "${key}": its value takes ${bytes} bytes, more than maxBytes ${this.#maxBytes}`,
      );
    }
    return bytes;
  }

  #open(): void {
    if (this.#closed) throw new SluiceError("E_CLOSED", "Cannot use MemoryStore: it is closed");
  }
}

/** A copy of the value of `key`, so that callers never share it with the store. */
function copy<T>(key: string, value: T): T {
  try {
    return structuredClone(value);
  } catch (e) {
    throw notCloneable(key, e);
  }
}

/** Runs `fn` now; its result or throw as a promise (so that callers always get a rejection). */
function settle<T>(fn: () => T): Promise<T> {
  try {
    return Promise.resolve(fn());
  } catch (error) {
    return Promise.reject(error);
  }
}
