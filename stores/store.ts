/**
 * The `Store` interface every backend implements: Deno KV (the embedded default), Redis, MongoDB
 * and memory. Stores serve as sinks, lookup caches and state backends.
 *
 * @module
 */

/** Options of a write. */
export interface StoreSetOptions {
  /** Time to live in ms; the entry disappears some time after it. Default: no expiry. */
  ttlMs?: number;
}

/**
 * A key-value store with string keys and structured-cloneable values.
 *
 * Writes of several entries (`setMany`) are atomic per backend batch: a batch is either fully
 * written or not at all, so a replayed batch overwrites itself (idempotent). `increment`,
 * `incrementMany` and `mergeMany` are optional: backends that cannot do them atomically leave
 * them out.
 *
 * @example A tiny memory store that satisfies the interface
 * ```ts
 * import type { Store } from "@sluice/sluice";
 * import assert from "node:assert/strict";
 *
 * const data = new Map<string, unknown>();
 * const store: Store = {
 *   get: (key) => Promise.resolve(data.get(key) as never),
 *   getMany: (keys) => Promise.resolve(keys.map((k) => data.get(k)) as never),
 *   set: (key, value) => Promise.resolve(void data.set(key, value)),
 *   async setMany(entries) {
 *     for (const [k, v] of entries) data.set(k, v);
 *   },
 *   delete: (key) => Promise.resolve(void data.delete(key)),
 *   async *scan(prefix = "") {
 *     for (const [k, v] of [...data].sort()) if (k.startsWith(prefix)) yield [k, v as never];
 *   },
 *   close: () => Promise.resolve(),
 * };
 * await store.set("a", 1);
 * assert.deepEqual(await store.getMany(["a", "b"]), [1, undefined]);
 * ```
 */
export interface Store {
  /**
   * Reads one value.
   *
   * @param key The key.
   * @returns The value, or `undefined` when the key is absent (or expired).
   */
  get<T = unknown>(key: string): Promise<T | undefined>;

  /**
   * Reads several values.
   *
   * @param keys The keys.
   * @returns The values in the order of `keys`, `undefined` for absent ones.
   */
  getMany<T = unknown>(keys: readonly string[]): Promise<(T | undefined)[]>;

  /**
   * Writes one value.
   *
   * @param key The key.
   * @param value A structured-cloneable value.
   * @param options `ttlMs`.
   */
  set(key: string, value: unknown, options?: StoreSetOptions): Promise<void>;

  /**
   * Writes several values in as few atomic batches as the backend allows; for a key given
   * twice, the last value wins.
   *
   * @param entries `[key, value]` pairs.
   * @param options `ttlMs`, applied to every entry.
   */
  setMany(
    entries: Iterable<readonly [string, unknown]>,
    options?: StoreSetOptions,
  ): Promise<void>;

  /**
   * Deletes a key; deleting an absent key is not an error.
   *
   * @param key The key.
   */
  delete(key: string): Promise<void>;

  /**
   * Lists the entries whose key starts with `prefix`, in key order.
   *
   * @param prefix Key prefix. Default `""` (every entry).
   * @returns `[key, value]` pairs.
   */
  scan<T = unknown>(prefix?: string): AsyncIterable<[string, T]>;

  /**
   * Adds `by` to the number stored at `key` (absent counts as 0), atomically.
   *
   * @param key The key.
   * @param by The amount to add.
   * @returns The new value.
   */
  increment?(key: string, by: number): Promise<number>;

  /**
   * Adds amounts to the numbers at several keys (absent counts as 0), atomically per key; for a
   * key given twice, both amounts are added.
   *
   * @param entries `[key, amount]` pairs.
   * @param options `ttlMs` of the written entries (default: they keep their expiry).
   */
  incrementMany?(
    entries: Iterable<readonly [string, number]>,
    options?: StoreSetOptions,
  ): Promise<void>;

  /**
   * Shallow-merges plain objects into the entries at their keys, atomically per key: no
   * concurrent update of a key is lost. An absent entry, or one that is not a plain object,
   * becomes the object.
   *
   * @param entries `[key, fields]` pairs.
   * @param options `ttlMs` of the written entries (default: no expiry).
   */
  mergeMany?(
    entries: Iterable<readonly [string, Readonly<Record<string, unknown>>]>,
    options?: StoreSetOptions,
  ): Promise<void>;

  /** Releases the store. Calling it twice is not an error. */
  close(): Promise<void>;
}
