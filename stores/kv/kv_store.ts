/**
 * `KvStore`: the embedded default store, on Deno KV (a local SQLite file, no server).
 *
 * @module
 */
import { RetriableError, SluiceError } from "../../actors/errors.ts";
import { checkAmount, checkKey, isPlainObject } from "../_args.ts";
import type { Store, StoreSetOptions } from "../store.ts";
import {
  assemble,
  isManifest,
  KEY_LIMIT,
  keyBytes,
  type Manifest,
  prepare,
  type Prepared,
} from "./_codec.ts";
import { commitOps, deleteOp, type Op, setOp } from "./_atomic.ts";
import { ENVELOPE_BYTES, unwrap, withExpiry } from "./_expiry.ts";
import { KeyLocks } from "./_key_locks.ts";
import { KnownEntries } from "./_known_entries.ts";

/** Where {@linkcode KvStore.open} puts the database when no path is given. */
export const DEFAULT_KV_PATH = ".sluice/sluice.kv";

/** Options of {@linkcode KvStore.open}. */
export interface KvStoreOptions {
  /**
   * Key parts between the `"sluice"` root and each key: stores with different namespaces share a
   * file without seeing each other's keys. Default `[]`.
   */
  namespace?: readonly string[];
}

const ROOT = "sluice";
const CHUNK_ROOT = "sluice.chunks";
const MAX_ATTEMPTS = 32;
const GET_MANY = 10; // KV reads at most 10 keys at once
const CHUNK_TTL_MARGIN_MS = 60_000; // chunks outlive their manifest
const DELETE = Symbol("delete");
/** What `#resolve` returns for an entry that is absent or expired. */
const ABSENT = Symbol("absent");
const KNOWN_ENTRIES = 10_000;

/** A value already measured by `prepare`, so that `#update` need not measure it again. */
class Ready {
  constructor(readonly value: unknown, readonly prepared: Prepared) {}
}

type Chunked = Extract<Prepared, { inline: false }>;
type Next = (key: string, current: unknown, exists: boolean) => unknown;

/** How `#update` sets expiry: `expireIn` (ms from now), else keep the entry's own if asked. */
interface UpdateOptions {
  expireIn?: number;
  keepExpiry?: boolean;
  /** Whether `next` needs the current values (else chunked values are not read). */
  current: boolean;
}

/**
 * A {@linkcode Store} on Deno KV. Keys are strings, stored as `["sluice", ...namespace, key]`;
 * values are structured-cloneable. Values over KV's 64 KiB limit are split into chunks behind the
 * scenes (written before the entry that points to them, so readers never see half a value) and
 * deleted with their entry. Writes of many entries are atomic per KV batch (1000 mutations,
 * 800 KiB); read-modify-writes (`increment`, `incrementMany`, `mergeMany`, `updateMany`) check
 * versionstamps and retry on conflict, so concurrent writers in other workers or processes never
 * lose an update. An entry written with `ttlMs` is absent to every read from its expiry time on
 * (KV itself deletes it some time later).
 *
 * Needs `--unstable-kv` (or `"unstable": ["kv"]` in deno.json), and read + write permission on
 * the database file (the `-wal`/`-shm` siblings need none).
 *
 * @example Set, read, count
 * ```ts
 * import { KvStore } from "@sluice/sluice";
 * import assert from "node:assert/strict";
 *
 * await using store = await KvStore.open(":memory:");
 * await store.setMany([["sku:1", { name: "pen" }], ["sku:2", { name: "ink" }]]);
 * assert.deepEqual(await store.get("sku:1"), { name: "pen" });
 * assert.equal(await store.increment("views", 2), 2);
 * const keys = [];
 * for await (const [key] of store.scan("sku:")) keys.push(key);
 * assert.deepEqual(keys, ["sku:1", "sku:2"]);
 * ```
 */
export class KvStore implements Store, AsyncDisposable {
  readonly #kv: Deno.Kv;
  readonly #base: readonly string[];
  readonly #chunkBase: readonly string[];
  readonly #known = new KnownEntries(KNOWN_ENTRIES);
  readonly #locks = new KeyLocks();
  #closed = false;
  /** The database path given to {@linkcode KvStore.open}. */
  readonly path: string;

  private constructor(kv: Deno.Kv, path: string, namespace: readonly string[]) {
    this.#kv = kv;
    this.path = path;
    this.#base = [ROOT, ...namespace];
    this.#chunkBase = [CHUNK_ROOT, ...namespace];
  }

  /**
   * Opens (or creates) a KV database file, creating its directory when missing.
   *
   * @param path File path, or `":memory:"`. Default {@linkcode DEFAULT_KV_PATH}.
   * @param options `namespace`.
   * @returns The store; close it with `close()` or `await using`.
   * @throws {SluiceError} `E_UNSTABLE` when Deno KV is not enabled, `E_STORE` when the file
   *   cannot be opened (the message says why: permissions, a bad path).
   * @throws {TypeError} When the namespace is not an array of strings.
   *
   * @example
   * ```ts
   * import { KvStore } from "@sluice/sluice";
   * import assert from "node:assert/strict";
   *
   * const dir = await Deno.makeTempDir();
   * const store = await KvStore.open(`${dir}/state/app.kv`, { namespace: ["orders"] });
   * await store.set("o1", { total: 12 });
   * await store.close();
   * await using again = await KvStore.open(`${dir}/state/app.kv`, { namespace: ["orders"] });
   * assert.deepEqual(await again.get("o1"), { total: 12 });
   * ```
   */
  static async open(
    path: string = DEFAULT_KV_PATH,
    options: KvStoreOptions = {},
  ): Promise<KvStore> {
    const namespace = options.namespace ?? [];
    if (!Array.isArray(namespace) || namespace.some((p) => typeof p !== "string")) {
      throw new TypeError("Cannot open KvStore: options.namespace is not an array of strings");
    }
    const openKv = (Deno as { openKv?: (path?: string) => Promise<Deno.Kv> }).openKv;
    if (typeof openKv !== "function") {
      throw new SluiceError(
        "E_UNSTABLE",
        "Cannot open KvStore: Deno KV is not enabled (run with --unstable-kv, " +
          'or set "unstable": ["kv"] in deno.json)',
      );
    }
    const fail = (e: unknown) =>
      new SluiceError(
        "E_STORE",
        `Cannot open KvStore at "${path}": ${e instanceof Error ? e.message : String(e)}`,
        { cause: e },
      );
    let kv: Deno.Kv;
    try {
      kv = await openKv(path);
    } catch (first) {
      // The usual cause is a missing directory; creating it needs write access to the parent,
      // which a worker granted only the file does not have, so try to open first.
      const dir = path.replace(/[/\\][^/\\]*$/, "");
      if (path === ":memory:" || dir === path || dir === "") throw fail(first);
      try {
        await Deno.mkdir(dir, { recursive: true });
        kv = await openKv(path);
      } catch {
        throw fail(first);
      }
    }
    return new KvStore(kv, path, namespace);
  }

  /**
   * Reads one value.
   *
   * @param key The key.
   * @returns The value, or `undefined` when absent.
   *
   * @example
   * ```ts
   * import { KvStore } from "@sluice/sluice";
   * import assert from "node:assert/strict";
   *
   * await using store = await KvStore.open(":memory:");
   * assert.equal(await store.get("missing"), undefined);
   * ```
   */
  async get<T = unknown>(key: string): Promise<T | undefined> {
    this.#open();
    const entry = await this.#kv.get(this.#key(key));
    const value = await this.#resolve(key, entry);
    return value === ABSENT ? undefined : value as T;
  }

  /**
   * Reads several values (KV reads 10 keys per request; requests run concurrently).
   *
   * @param keys The keys.
   * @returns Values in the order of `keys`, `undefined` for absent ones.
   *
   * @example
   * ```ts
   * import { KvStore } from "@sluice/sluice";
   * import assert from "node:assert/strict";
   *
   * await using store = await KvStore.open(":memory:");
   * await store.set("a", 1);
   * assert.deepEqual(await store.getMany(["a", "b"]), [1, undefined]);
   * ```
   */
  async getMany<T = unknown>(keys: readonly string[]): Promise<(T | undefined)[]> {
    this.#open();
    const entries = await this.#entries(keys);
    const now = Date.now();
    const values = await Promise.all(entries.map((e, i) => this.#resolve(keys[i]!, e, now)));
    return values.map((v) => v === ABSENT ? undefined : v) as (T | undefined)[];
  }

  /**
   * Writes one value; values over 64 KiB are chunked.
   *
   * @param key The key.
   * @param value A structured-cloneable value.
   * @param options `ttlMs`: reads no longer see the entry from then on (and KV deletes it some
   *   time later). Without it, the entry has no expiry.
   * @throws {RangeError} When the key is over ~2 KB encoded or `ttlMs` is not positive.
   * @throws {TypeError} When the key is not a string (or holds a lone surrogate).
   * @throws {DOMException} (DataCloneError) When the value is not structured-cloneable.
   *
   * @example
   * ```ts
   * import { KvStore } from "@sluice/sluice";
   * import assert from "node:assert/strict";
   *
   * await using store = await KvStore.open(":memory:");
   * await store.set("session", { user: "ada" }, { ttlMs: 60_000 });
   * await store.set("blob", "x".repeat(200_000));
   * assert.equal((await store.get<string>("blob"))?.length, 200_000);
   * ```
   */
  async set(key: string, value: unknown, options: StoreSetOptions = {}): Promise<void> {
    await this.setMany([[key, value]], options);
  }

  /**
   * Writes several values. Small values go in as few atomic operations as KV allows (1000
   * mutations / 800 KiB each); when large values are involved, or chunked values may be
   * overwritten, each atomic operation also checks the entries it replaces so that their old
   * chunks can be deleted. For a key given twice, the last value wins.
   *
   * @param entries `[key, value]` pairs.
   * @param options `ttlMs` for every entry.
   * @throws {RangeError} When a key is too long or `ttlMs` is not positive.
   *
   * @example
   * ```ts
   * import { KvStore } from "@sluice/sluice";
   * import assert from "node:assert/strict";
   *
   * await using store = await KvStore.open(":memory:");
   * await store.setMany(Array.from({ length: 2500 }, (_, i) => [`k${i}`, i] as const));
   * assert.equal(await store.get("k2499"), 2499);
   * ```
   */
  async setMany(
    entries: Iterable<readonly [string, unknown]>,
    options: StoreSetOptions = {},
  ): Promise<void> {
    this.#open();
    const expireIn = ttl(options);
    const values = new Map<string, Ready>();
    for (const [key, value] of entries) {
      this.#key(key);
      values.set(key, new Ready(value, prepare(value, key)));
    }
    if (values.size === 0) return;
    const large = [...values.values()].some((r) => !r.prepared.inline);
    if (large || await this.#hasChunks()) {
      await this.#update([...values.keys()], (key) => values.get(key), {
        expireIn,
        current: false,
      });
      return;
    }
    const expiresAt = expireIn === undefined ? undefined : Date.now() + expireIn;
    const extra = expiresAt === undefined ? 0 : ENVELOPE_BYTES;
    const ops: Op[] = [];
    for (const [user, { prepared: p }] of values) {
      if (!p.inline) continue;
      const stored = withExpiry(p.value, expiresAt);
      ops.push(setOp(user, this.#key(user), stored, p.bytes + extra, { expireIn }));
    }
    await commitOps(this.#kv, ops);
    for (const key of values.keys()) this.#known.forget(key);
  }

  /**
   * Deletes a key and, for a chunked value, its chunks.
   *
   * @param key The key.
   *
   * @example
   * ```ts
   * import { KvStore } from "@sluice/sluice";
   * import assert from "node:assert/strict";
   *
   * await using store = await KvStore.open(":memory:");
   * await store.set("a", 1);
   * await store.delete("a");
   * assert.equal(await store.get("a"), undefined);
   * ```
   */
  async delete(key: string): Promise<void> {
    this.#open();
    await this.#update([key], () => DELETE, { current: false });
  }

  /**
   * Lists entries whose key starts with `prefix`, in key order (UTF-8 byte order), reading
   * lazily in pages.
   *
   * @param prefix Key prefix. Default `""`: every entry of the namespace.
   * @returns An async iterable of `[key, value]`.
   *
   * @example
   * ```ts
   * import { KvStore } from "@sluice/sluice";
   * import assert from "node:assert/strict";
   *
   * await using store = await KvStore.open(":memory:");
   * await store.setMany([["user:2", "b"], ["user:1", "a"], ["order:1", "x"]]);
   * const users = [];
   * for await (const entry of store.scan("user:")) users.push(entry);
   * assert.deepEqual(users, [["user:1", "a"], ["user:2", "b"]]);
   * ```
   */
  async *scan<T = unknown>(prefix = ""): AsyncIterableIterator<[string, T]> {
    this.#open();
    if (typeof prefix !== "string") throw new TypeError("Cannot scan: prefix is not a string");
    const base = this.#base;
    const selector = prefix === "" ? { prefix: base } : { prefix: base, start: [...base, prefix] };
    for await (const entry of this.#kv.list(selector, { batchSize: 500 })) {
      const key = entry.key[base.length];
      if (typeof key !== "string") continue;
      if (!key.startsWith(prefix)) break;
      if (entry.key.length !== base.length + 1) continue; // a nested namespace's key
      const value = await this.#resolve(key, entry);
      if (value !== ABSENT) yield [key, value as T];
    }
  }

  /**
   * Adds `by` to the number at `key` (absent or expired counts as 0): a read-check-write that
   * retries when another writer changed the key meanwhile, so no increment is lost. Works with
   * fractions and negative numbers (unlike `Deno.KvU64`). The entry keeps its expiry.
   *
   * @param key The key.
   * @param by A finite number.
   * @returns The new value.
   * @throws {TypeError} When `by` is not a finite number, or the stored value is not a number.
   *
   * @example
   * ```ts
   * import { KvStore } from "@sluice/sluice";
   * import assert from "node:assert/strict";
   *
   * await using store = await KvStore.open(":memory:");
   * await Promise.all([1, 2, 3, 4].map((n) => store.increment("total", n)));
   * assert.equal(await store.get("total"), 10);
   * ```
   */
  async increment(key: string, by: number): Promise<number> {
    this.#open();
    checkAmount(by, String(key));
    const out = await this.#update([key], (k, current) => add(k, current, by), {
      current: true,
      keepExpiry: true,
    });
    return out.get(key) as number;
  }

  /**
   * Adds amounts to the numbers at several keys (absent or expired counts as 0; for a key given
   * twice, both amounts are added): a checked read-modify-write like `increment`. Every key is
   * checked before any is written: when one holds something other than a number, nothing is.
   *
   * @param entries `[key, amount]` pairs.
   * @param options `ttlMs` of the written entries. Default: each keeps its expiry.
   * @throws {TypeError} When an amount is not a finite number or a value is not a number.
   * @throws {RangeError} When `ttlMs` is not positive.
   *
   * @example
   * ```ts
   * import { KvStore } from "@sluice/sluice";
   * import assert from "node:assert/strict";
   *
   * await using store = await KvStore.open(":memory:");
   * await store.incrementMany([["pen", 2], ["ink", 1], ["pen", 3]]);
   * assert.deepEqual(await store.getMany(["pen", "ink"]), [5, 1]);
   * ```
   */
  async incrementMany(
    entries: Iterable<readonly [string, number]>,
    options: StoreSetOptions = {},
  ): Promise<void> {
    this.#open();
    const expireIn = ttl(options);
    const sums = new Map<string, number>();
    for (const [key, by] of entries) {
      this.#key(key);
      sums.set(key, (sums.get(key) ?? 0) + checkAmount(by, key));
    }
    if (sums.size === 0) return;
    await this.#update([...sums.keys()], (key, current) => add(key, current, sums.get(key)!), {
      expireIn,
      keepExpiry: expireIn === undefined,
      current: true,
    });
  }

  /**
   * Shallow-merges plain objects into the entries at their keys (an absent or expired entry, or
   * one that is not a plain object, becomes the object): a checked read-modify-write, so no
   * concurrent update of a key is lost.
   *
   * @param entries `[key, fields]` pairs; fields of a key given twice are merged in order.
   * @param options `ttlMs` of the written entries. Default: no expiry.
   * @throws {TypeError} When fields are not a plain object.
   * @throws {RangeError} When `ttlMs` is not positive.
   * @throws {DOMException} (DataCloneError) When fields are not structured-cloneable.
   *
   * @example
   * ```ts
   * import { KvStore } from "@sluice/sluice";
   * import assert from "node:assert/strict";
   *
   * await using store = await KvStore.open(":memory:");
   * await store.mergeMany([["u1", { name: "ada" }]]);
   * await store.mergeMany([["u1", { plan: "pro" }]]);
   * assert.deepEqual(await store.get("u1"), { name: "ada", plan: "pro" });
   * ```
   */
  async mergeMany(
    entries: Iterable<readonly [string, Readonly<Record<string, unknown>>]>,
    options: StoreSetOptions = {},
  ): Promise<void> {
    this.#open();
    const expireIn = ttl(options);
    const folded = new Map<string, Record<string, unknown>>();
    for (const [key, fields] of entries) {
      this.#key(key);
      if (!isPlainObject(fields)) {
        throw new TypeError(`Cannot merge into key "${key}": the fields are not a plain object`);
      }
      folded.set(key, { ...folded.get(key), ...fields });
    }
    if (folded.size === 0) return;
    const merge = (key: string, current: unknown) => ({
      ...(isPlainObject(current) ? current : {}),
      ...folded.get(key),
    });
    await this.#update([...folded.keys()], merge, { expireIn, current: true });
  }

  /**
   * Read-modify-write of several keys: `fn` gets each current value (or `undefined`) and returns
   * the new one. Keys are written in atomic operations of up to 100 keys, each checking that its
   * keys did not change since they were read; keys that did are read again and `fn` is called
   * again for them, so `fn` must be pure.
   *
   * @param keys The keys (duplicates are ignored).
   * @param fn `(current, key) => next`.
   * @param options `ttlMs` for the written entries. Default: no expiry.
   * @returns The values written, by key.
   * @throws {RetriableError} When keys kept changing under concurrent writers (32 attempts).
   *
   * @example Merging fields
   * ```ts
   * import { KvStore } from "@sluice/sluice";
   * import assert from "node:assert/strict";
   *
   * await using store = await KvStore.open(":memory:");
   * await store.set("u1", { name: "ada" });
   * await store.updateMany<Record<string, unknown>>(["u1"], (old) => ({ ...old, vip: true }));
   * assert.deepEqual(await store.get("u1"), { name: "ada", vip: true });
   * ```
   */
  async updateMany<T = unknown>(
    keys: Iterable<string>,
    fn: (current: T | undefined, key: string) => T,
    options: StoreSetOptions = {},
  ): Promise<Map<string, T>> {
    this.#open();
    const expireIn = ttl(options);
    const list = [...new Set(keys)];
    for (const key of list) this.#key(key);
    const next: Next = (key, current) => fn(current as T | undefined, key);
    return await this.#update(list, next, { expireIn, current: true }) as Map<string, T>;
  }

  /** Closes the database. Calling it twice is not an error; other calls after it throw. */
  close(): Promise<void> {
    if (!this.#closed) {
      this.#closed = true;
      this.#kv.close();
    }
    return Promise.resolve();
  }

  /** Closes the database (for `await using`). */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  #open(): void {
    if (this.#closed) {
      throw new SluiceError("E_CLOSED", `Cannot use KvStore "${this.path}": it is closed`);
    }
  }

  #key(key: string): string[] {
    if (typeof key !== "string") {
      throw new TypeError(`Cannot use key: expected a string, got ${typeof key}`);
    }
    checkKey(key, "use key");
    const parts = [...this.#base, key];
    const size = keyBytes(parts);
    if (size > KEY_LIMIT) {
      throw new RangeError(
        `Cannot use key "${key.slice(0, 32)}…": it is ${size} bytes encoded, over ${KEY_LIMIT}`,
      );
    }
    return parts;
  }

  async #entries(keys: readonly string[]): Promise<Deno.KvEntryMaybe<unknown>[]> {
    const kvKeys = keys.map((k) => this.#key(k));
    const groups: Promise<Deno.KvEntryMaybe<unknown>[]>[] = [];
    for (let i = 0; i < kvKeys.length; i += GET_MANY) {
      groups.push(this.#kv.getMany(kvKeys.slice(i, i + GET_MANY)));
    }
    return (await Promise.all(groups)).flat();
  }

  /**
   * The user value of an entry, or ABSENT when it is absent or expired at `now`: reassembles
   * chunks, retrying when the entry was just replaced.
   */
  async #resolve(
    key: string,
    entry: Deno.KvEntryMaybe<unknown>,
    now = Date.now(),
  ): Promise<unknown> {
    for (let attempt = 0; attempt < 5; attempt++) {
      if (entry.versionstamp === null) return ABSENT;
      const { stored, expiresAt } = unwrap(entry.value);
      if (expiresAt !== undefined && expiresAt <= now) return ABSENT;
      if (!isManifest(stored)) return stored;
      const { id, chunks, bytes } = stored;
      const parts: Uint8Array[] = [];
      for await (const c of this.#kv.list<Uint8Array>({ prefix: [...this.#chunkBase, key, id] })) {
        parts.push(c.value);
      }
      if (parts.length === chunks) return assemble(parts, bytes);
      entry = await this.#kv.get(this.#key(key));
    }
    throw new SluiceError("E_STORE", `Cannot read key "${key}": chunks of its value are missing`);
  }

  async #hasChunks(): Promise<boolean> {
    for await (const _ of this.#kv.list({ prefix: this.#chunkBase }, { limit: 1 })) return true;
    return false;
  }

  /**
   * Read-check-write of `keys`: reads each entry, asks `next` for its new value (or DELETE),
   * writes chunks of large values, then commits checked atomic operations. Keys whose check
   * failed go round again (after a short random pause); chunks of replaced values (and of lost
   * attempts) are deleted. This store's own read-check-writes of a key take turns.
   */
  async #update(
    keys: string[],
    next: Next,
    options: UpdateOptions,
  ): Promise<Map<string, unknown>> {
    for (const key of keys) this.#key(key);
    const release = await this.#locks.acquire(keys);
    try {
      return await this.#updateLocked(keys, next, options);
    } finally {
      release();
    }
  }

  async #updateLocked(
    keys: string[],
    next: Next,
    options: UpdateOptions,
  ): Promise<Map<string, unknown>> {
    const results = new Map<string, unknown>();
    let pending = keys;
    for (let attempt = 0; pending.length > 0; attempt++) {
      if (attempt === MAX_ATTEMPTS) {
        throw new RetriableError(
          `Cannot write ${pending.length} key(s) to KvStore "${this.path}": ` +
            `they kept changing under concurrent writers`,
        );
      }
      if (attempt > 0) await sleep(Math.random() * Math.min(50, 2 ** attempt));
      const entries = await this.#known.entries(pending, (keys) => this.#entries(keys));
      const now = Date.now();
      const planned: [string, Deno.KvEntryMaybe<unknown>, Prepared | typeof DELETE][] = [];
      for (let i = 0; i < pending.length; i++) {
        const key = pending[i]!;
        const entry = entries[i]!;
        const current = options.current ? await this.#resolve(key, entry, now) : ABSENT;
        const value = next(key, current === ABSENT ? undefined : current, current !== ABSENT);
        if (value === DELETE) {
          results.set(key, undefined);
          planned.push([key, entry, DELETE]);
        } else if (value instanceof Ready) {
          results.set(key, value.value);
          planned.push([key, entry, value.prepared]);
        } else {
          results.set(key, value);
          planned.push([key, entry, prepare(value, key)]);
        }
      }
      const written: [string, Manifest][] = [];
      const replaced: [string, Manifest][] = [];
      const ops: Op[] = [];
      for (const [user, entry, p] of planned) {
        const key = this.#key(user);
        const check = entry.versionstamp;
        const old = unwrap(entry.value);
        if (isManifest(old.stored)) replaced.push([user, old.stored]);
        let expiresAt = options.expireIn === undefined ? undefined : now + options.expireIn;
        if (expiresAt === undefined && options.keepExpiry && (old.expiresAt ?? 0) > now) {
          expiresAt = old.expiresAt;
        }
        const expireIn = expiresAt === undefined ? undefined : expiresAt - now;
        const extra = expiresAt === undefined ? 0 : ENVELOPE_BYTES;
        if (p === DELETE) {
          ops.push(deleteOp(user, key, check));
        } else if (p.inline) {
          const stored = withExpiry(p.value, expiresAt);
          ops.push(setOp(user, key, stored, p.bytes + extra, { check, expireIn }));
        } else {
          await this.#writeChunks(user, p, expireIn);
          written.push([user, p.manifest]);
          const stored = withExpiry(p.manifest, expiresAt);
          ops.push(setOp(user, key, stored, 200 + extra, { check, expireIn }));
        }
      }
      const { failed, stamps } = await commitOps(this.#kv, ops);
      for (const op of ops) {
        const stamp = stamps.get(op.user);
        if (stamp === undefined || op.kind === "delete") this.#known.forget(op.user);
        else this.#known.remember(op.user, op.value, stamp);
      }
      const garbage = [
        ...written.filter(([k]) => failed.has(k)),
        ...replaced.filter(([k]) => !failed.has(k)),
      ];
      await this.#deleteChunks(garbage);
      pending = pending.filter((k) => failed.has(k));
    }
    return results;
  }

  async #writeChunks(user: string, p: Chunked, expireIn?: number): Promise<void> {
    const { id } = p.manifest;
    const ttlMs = expireIn === undefined ? undefined : expireIn + CHUNK_TTL_MARGIN_MS;
    const ops = p.parts.map((part, i) =>
      setOp(user, [...this.#chunkBase, user, id, i], part, part.byteLength, { expireIn: ttlMs })
    );
    await commitOps(this.#kv, ops);
  }

  async #deleteChunks(sets: [string, Manifest][]): Promise<void> {
    const ops: Op[] = [];
    for (const [user, { id, chunks }] of sets) {
      for (let i = 0; i < chunks; i++) ops.push(deleteOp(user, [...this.#chunkBase, user, id, i]));
    }
    await commitOps(this.#kv, ops);
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** `current + by`, checking that `current` is a number (or absent). */
function add(key: string, current: unknown, by: number): number {
  if (current !== undefined && typeof current !== "number") {
    throw new TypeError(`Cannot increment key "${key}": its value is not a number`);
  }
  return (current ?? 0) + by;
}

function ttl(options: StoreSetOptions): number | undefined {
  const ms = options.ttlMs;
  if (ms === undefined) return undefined;
  if (typeof ms !== "number" || !Number.isFinite(ms) || ms <= 0) {
    throw new RangeError(`Cannot set entry: ttlMs must be a positive number, got ${String(ms)}`);
  }
  return Math.ceil(ms);
}
