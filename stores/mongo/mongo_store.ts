/**
 * `MongoStore`: a {@linkcode Store} on MongoDB (the official driver), one document per key.
 *
 * @module
 */
import { SluiceError } from "../../actors/errors.ts";
import {
  checkAmount,
  checkKey,
  checkTtl,
  compareKeys,
  foldFields,
  isPlainObject,
  lastValues,
  sumAmounts,
} from "../_args.ts";
import { compressThreshold } from "../_compression.ts";
import type { Store, StoreSetOptions } from "../store.ts";
import { attempt, connect, target } from "./_client.ts";
import type { AnyBulkWriteOperation, Collection, MongoClient, Mongodb } from "./_deps.ts";
import { decodeDoc, encodeDoc, expired, isSettable, newRev, type StoreDoc } from "./_doc_codec.ts";

/** Options of {@linkcode MongoStore.open}. */
export interface MongoStoreOptions {
  /**
   * Connection string, `mongodb://[user:password@]host[:port][,host…]/…` or `mongodb+srv://…`.
   * Credentials go to the driver only, never into messages. Default
   * `"mongodb://127.0.0.1:27017"`.
   */
  url?: string;
  /** Database. Default `"sluice"`. */
  db?: string;
  /** Collection: the store's namespace. Default `"store"`. */
  collection?: string;
  /** gzip values whose encoding is longer than this many bytes. Default: never. */
  compressAboveBytes?: number;
  /** How long to look for a usable server before an operation fails, ms. Default 5000. */
  serverSelectionTimeoutMs?: number;
  /** Time to establish a connection, ms. Default 5000. */
  connectTimeoutMs?: number;
  /** Further `MongoClient` options, passed through (`tls`, `authSource`, `appName`, …). */
  clientOptions?: Record<string, unknown>;
}

/** A store document as the driver's update types see it (they refuse `$inc` on `unknown`). */
// deno-lint-ignore no-explicit-any
type Loose = { _id: string; [field: string]: any };

const CHUNK = 1000;
const SCAN_PAGE = 500;
const MAX_ATTEMPTS = 32;

/**
 * A store on MongoDB: each key is one document `{ _id: key, value, expiresAt?, rev }`. Values
 * BSON holds exactly (JSON-like data and Dates) are stored as they are, so other programs can
 * query them; other structured-cloneable values (Map, Set, typed arrays, bigint, …) are
 * V8-serialised into a `bytes` field (gzip above `compressAboveBytes`, when that makes it
 * shorter). A value must fit in a 16 MiB document: a larger one is refused with a `RangeError`.
 * `scan` lists keys in UTF-8 byte order, as every store does, whatever order the server keeps.
 *
 * Batches are single round trips: `getMany` is one `find` per 1000 keys, `setMany` one unordered
 * `bulkWrite` of upserts (atomic per key; a replayed batch writes the same). `incrementMany`
 * checks the keys and then `$inc`s them; `mergeMany` `$set`s the fields into values that are
 * plain objects already (atomic on the server, nothing read), and otherwise reads, merges and
 * writes back only where the document's `rev` is unchanged, retrying the others, so no
 * concurrent update is lost.
 *
 * TTL: expiring documents get `expiresAt` and `open` creates a TTL index on it; since a server's
 * TTL monitor runs only now and then (and some MongoDB-compatible servers never delete), reads
 * treat expired documents as absent and delete them.
 *
 * A worker that opens one needs `net` to the hosts, `env` for the variables the driver looks up
 * and `sys: ["osRelease"]` (see `storePermissions`).
 *
 * @example
 * ```ts
 * import { MongoStore } from "@sluice/sluice";
 * import assert from "node:assert/strict";
 *
 * const url = Deno.env.get("SLUICE_MONGO_URL") ?? "mongodb://127.0.0.1:27018";
 * await using store = await MongoStore.open({ url, db: "sluice_doc", collection: "example" });
 * await store.setMany([["sku:1", { name: "pen", stock: 3 }], ["sku:2", new Map([["a", 1]])]]);
 * assert.deepEqual(await store.get("sku:2"), new Map([["a", 1]]));
 * assert.equal(await store.increment("hits", 2), (await store.get<number>("hits")) ?? NaN);
 * for (const key of ["sku:1", "sku:2", "hits"]) await store.delete(key);
 * ```
 */
export class MongoStore implements Store, AsyncDisposable {
  readonly #client: MongoClient;
  readonly #driver: Mongodb;
  readonly #docs: Collection<StoreDoc>;
  /** The same collection, loosely typed for updates (`$inc` on a field typed `unknown`). */
  readonly #writes: Collection<Loose>;
  readonly #compress: number | undefined;
  readonly #where: string;
  #closed = false;

  private constructor(
    client: MongoClient,
    driver: Mongodb,
    docs: Collection<StoreDoc>,
    compress: number | undefined,
    where: string,
  ) {
    this.#client = client;
    this.#driver = driver;
    this.#docs = docs;
    this.#writes = docs as unknown as Collection<Loose>;
    this.#compress = compress;
    this.#where = where;
  }

  /**
   * Connects (the driver is loaded on first use) and creates the TTL index on `expiresAt`.
   *
   * @param options URL, database, collection, compression, client options.
   * @returns The store; close it with `close()` or `await using`.
   * @throws {SluiceError} `E_STORE` when no server can be reached (the message names the hosts,
   *   never credentials).
   *
   * @example
   * ```ts
   * import { MongoStore } from "@sluice/sluice";
   * import assert from "node:assert/strict";
   *
   * await assert.rejects(
   *   MongoStore.open({ url: "mongodb://u:secret@127.0.0.1:1", serverSelectionTimeoutMs: 300 }),
   *   (e: Error) => /127\.0\.0\.1:1/.test(e.message) && !e.message.includes("secret"),
   * );
   * ```
   */
  static async open(options: MongoStoreOptions = {}): Promise<MongoStore> {
    const {
      url = "mongodb://127.0.0.1:27017",
      db = "sluice",
      collection = "store",
      serverSelectionTimeoutMs = 5_000,
      connectTimeoutMs = 5_000,
      clientOptions = {},
    } = options;
    const compress = compressThreshold(options.compressAboveBytes, "MongoStore");
    const { client, driver } = await connect({
      url,
      serverSelectionTimeoutMs,
      connectTimeoutMs,
      clientOptions,
    });
    const where = `${target(url)} (${db}.${collection})`;
    const docs = client.db(db).collection<StoreDoc>(collection);
    try {
      await attempt(
        "open MongoStore",
        where,
        () =>
          docs.createIndex({ expiresAt: 1 }, { expireAfterSeconds: 0, name: "sluice_expires_at" }),
      );
    } catch (e) {
      await client.close().catch(() => {});
      throw e;
    }
    return new MongoStore(client, driver, docs, compress, where);
  }

  /** Reads one value; `undefined` when absent or expired. */
  async get<T = unknown>(key: string): Promise<T | undefined> {
    return (await this.getMany<T>([key]))[0];
  }

  /** Reads several values (one `find` per 1000 keys), in the order of `keys`. */
  async getMany<T = unknown>(keys: readonly string[]): Promise<(T | undefined)[]> {
    this.#open();
    for (const key of keys) checkKey(key, "get");
    const docs = await this.#read([...new Set(keys)]);
    return await Promise.all(
      keys.map((k) => docs.has(k) ? decodeDoc(docs.get(k)!) : undefined),
    ) as (T | undefined)[];
  }

  /** Writes one value. */
  set(key: string, value: unknown, options: StoreSetOptions = {}): Promise<void> {
    return this.setMany([[key, value]], options);
  }

  /**
   * Writes several values: one unordered `bulkWrite` of replace-upserts; for a key given twice,
   * the last value wins.
   *
   * @throws {RangeError} When `ttlMs` is not positive or a value does not fit in a document
   *   (nothing is written then).
   * @throws {TypeError} When a key is not a string.
   * @throws {DOMException} (DataCloneError) When a value is not structured-cloneable.
   */
  async setMany(
    entries: Iterable<readonly [string, unknown]>,
    options: StoreSetOptions = {},
  ): Promise<void> {
    this.#open();
    const ttl = checkTtl(options.ttlMs, "set entry");
    const last = lastValues(entries);
    if (last.size === 0) return;
    const expiresAt = ttl === undefined ? undefined : new Date(Date.now() + ttl);
    const ops: AnyBulkWriteOperation<Loose>[] = [];
    for (const [key, value] of last) {
      const replacement = await this.#encode(key, value, expiresAt);
      ops.push({ replaceOne: { filter: { _id: key }, replacement, upsert: true } });
    }
    await this.#run("write to MongoStore", () => this.#writes.bulkWrite(ops, { ordered: false }));
  }

  /** Deletes a key (absent is fine). */
  async delete(key: string): Promise<void> {
    this.#open();
    checkKey(key, "delete");
    await this.#run("delete from MongoStore", () => this.#docs.deleteOne({ _id: key }));
  }

  /**
   * Lists live entries whose key starts with `prefix`, in UTF-8 byte order of keys: the matching
   * keys are collected first and sorted here (MongoDB-compatible servers differ in how they order
   * strings), then values are read 500 at a time.
   */
  async *scan<T = unknown>(prefix = ""): AsyncIterableIterator<[string, T]> {
    this.#open();
    if (typeof prefix !== "string") throw new TypeError("Cannot scan: prefix is not a string");
    // Keys with a prefix are contiguous from the prefix itself in any lexicographic order.
    const cursor = this.#docs.find({ _id: { $gte: prefix } }, { projection: { _id: 1 } })
      .sort({ _id: 1 }).batchSize(5_000);
    const keys: string[] = [];
    try {
      while (true) {
        const doc = await this.#run("scan MongoStore", () => cursor.next());
        if (doc === null || !doc._id.startsWith(prefix)) break;
        keys.push(doc._id);
      }
    } finally {
      await cursor.close();
    }
    keys.sort(compareKeys);
    for (let i = 0; i < keys.length; i += SCAN_PAGE) {
      const page = keys.slice(i, i + SCAN_PAGE);
      const docs = await this.#read(page);
      for (const key of page) {
        const doc = docs.get(key);
        if (doc !== undefined) yield [key, await decodeDoc(doc) as T];
      }
    }
  }

  /**
   * Adds `by` to the number at `key` with `$inc` (absent or expired counts as 0; the document
   * keeps its expiry).
   *
   * @throws {TypeError} When `by` is not finite or the stored value is not a number.
   */
  async increment(key: string, by: number): Promise<number> {
    this.#open();
    checkAmount(by, checkKey(key, "increment"));
    await this.#checkNumbers([key]);
    for (let attempt = 0;; attempt++) {
      try {
        // The document as it was before the update, not after: the sum of a value no other
        // writer saw. (Some MongoDB-compatible servers read the "after" document outside the
        // update, so that concurrent increments return the same total.)
        const before = await this.#run(
          "increment in MongoStore",
          () =>
            this.#writes.findOneAndUpdate(
              { _id: key },
              { $inc: { value: by }, $set: { rev: newRev() } },
              { upsert: true, returnDocument: "before" },
            ),
        );
        return ((before?.value as number | undefined) ?? 0) + by;
      } catch (e) {
        // Two upserts of an absent key raced: the loser's update now finds the document.
        if ((e as { code?: unknown }).code === 11000 && attempt < MAX_ATTEMPTS) continue;
        throw notNumber(e, key);
      }
    }
  }

  /**
   * Adds amounts to several keys: one `find` checks they hold numbers (or nothing), then one
   * unordered `bulkWrite` of `$inc` upserts. With `ttlMs` the documents get that expiry.
   *
   * @throws {TypeError} When a value is not a number (nothing is written).
   */
  async incrementMany(
    entries: Iterable<readonly [string, number]>,
    options: StoreSetOptions = {},
  ): Promise<void> {
    this.#open();
    const ttl = checkTtl(options.ttlMs, "increment");
    const sums = sumAmounts(entries);
    if (sums.size === 0) return;
    await this.#checkNumbers([...sums.keys()]);
    const set = ttl === undefined
      ? { rev: newRev() }
      : { rev: newRev(), expiresAt: new Date(Date.now() + ttl) };
    const ops: AnyBulkWriteOperation<Loose>[] = [...sums].map(([key, by]) => ({
      updateOne: { filter: { _id: key }, update: { $inc: { value: by }, $set: set }, upsert: true },
    }));
    try {
      await this.#run(
        "increment in MongoStore",
        () => this.#writes.bulkWrite(ops, { ordered: false }),
      );
    } catch (e) {
      throw notNumber(e, [...sums.keys()].join(", "));
    }
  }

  /**
   * Shallow-merges plain objects into the entries at their keys. Where the stored value is a
   * plain object and BSON holds the fields exactly (and no compression is configured), one
   * `$set` per key writes the fields on the server, atomically, without reading. Other entries
   * (absent, expired, not objects, V8-encoded) are read, merged and written back only if their
   * `rev` did not change meanwhile (else read and merged again).
   *
   * @throws {TypeError} When fields are not a plain object.
   */
  async mergeMany(
    entries: Iterable<readonly [string, Readonly<Record<string, unknown>>]>,
    options: StoreSetOptions = {},
  ): Promise<void> {
    this.#open();
    const ttl = checkTtl(options.ttlMs, "merge");
    const folded = foldFields(entries);
    let pending = [...folded.keys()];
    for (let round = 0; pending.length > 0; round++) {
      if (round === MAX_ATTEMPTS) {
        throw new SluiceError(
          "E_STORE",
          `Cannot merge ${pending.length} key(s) into MongoStore: they kept changing under concurrent writers`,
        );
      }
      const rest = await this.#setFields(pending, folded, ttl);
      pending = rest.length === 0 ? [] : await this.#casMerge(rest, folded, ttl);
    }
  }

  /** Closes the client. Calling it twice is not an error. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.#client.close();
  }

  /** Closes the store (for `await using`). */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  /**
   * Merges fields with `$set` into documents whose value is a live plain object: atomic on the
   * server and nothing to read, so concurrent merges of one key never conflict (and a server
   * whose reads may see a document half-replaced cannot make one overwrite another). Returns the
   * keys it did not merge: their fields cannot be `$set`, or their value is absent, expired or
   * not an object.
   */
  async #setFields(
    keys: string[],
    folded: Map<string, Record<string, unknown>>,
    ttl: number | undefined,
  ): Promise<string[]> {
    if (this.#compress !== undefined) return keys; // merged values may need compressing
    const settable = keys.filter((k) => isSettable(folded.get(k)!));
    if (settable.length === 0) return keys;
    const now = new Date();
    const expiresAt = ttl === undefined ? undefined : new Date(now.getTime() + ttl);
    const revs = new Map<string, number>();
    const ops: AnyBulkWriteOperation<Loose>[] = settable.map((key) => {
      const set: Record<string, unknown> = { rev: newRev() };
      revs.set(key, set.rev as number);
      for (const [field, value] of Object.entries(folded.get(key)!)) set[`value.${field}`] = value;
      if (expiresAt !== undefined) set.expiresAt = expiresAt;
      const filter = {
        _id: key,
        value: { $type: "object", $not: { $type: "array" } },
        bytes: { $exists: false },
        $or: [{ expiresAt: { $exists: false } }, { expiresAt: { $gt: now } }],
      };
      const update = expiresAt === undefined
        ? { $set: set, $unset: { expiresAt: "" } }
        : { $set: set };
      return { updateOne: { filter, update } };
    });
    const r = await this.#run(
      "merge into MongoStore",
      () => this.#writes.bulkWrite(ops, { ordered: false }),
    );
    const rest = keys.filter((k) => !revs.has(k));
    if (r.matchedCount === ops.length) return rest;
    // Which ones matched? Those that carry our rev (or a later writer's: merged again, harmless).
    const docs = await this.#read(settable, true);
    return [...rest, ...settable.filter((k) => docs.get(k)?.rev !== revs.get(k))];
  }

  /** One read-merge-write round; returns the keys another writer changed meanwhile. */
  async #casMerge(
    keys: string[],
    folded: Map<string, Record<string, unknown>>,
    ttl: number | undefined,
  ): Promise<string[]> {
    const raw = await this.#read(keys, true);
    const expiresAt = ttl === undefined ? undefined : new Date(Date.now() + ttl);
    const ops: AnyBulkWriteOperation<Loose>[] = [];
    const written = new Map<string, number>();
    for (const key of keys) {
      const doc = raw.get(key);
      const old = doc === undefined || expired(doc, Date.now()) ? undefined : await decodeDoc(doc);
      const next = { ...(isPlainObject(old) ? old : {}), ...folded.get(key) };
      const replacement = await this.#encode(key, next, expiresAt);
      written.set(key, replacement.rev!);
      ops.push(
        doc === undefined
          ? { insertOne: { document: { _id: key, ...replacement } } }
          : { replaceOne: { filter: { _id: key, rev: doc.rev ?? null }, replacement } },
      );
    }
    const done = await this.#run("merge into MongoStore", async () => {
      try {
        const r = await this.#writes.bulkWrite(ops, { ordered: false });
        return r.insertedCount + r.matchedCount === ops.length;
      } catch (e) {
        if ((e as { code?: unknown }).code === 11000) return false; // inserted by another writer
        throw e;
      }
    });
    if (done) return [];
    const now = await this.#read(keys, true);
    return keys.filter((k) => now.get(k)?.rev !== written.get(k));
  }

  /** Documents of `keys` by key; expired ones are deleted and left out (unless `withExpired`). */
  async #read(keys: string[], withExpired = false): Promise<Map<string, StoreDoc>> {
    const out = new Map<string, StoreDoc>();
    const stale: string[] = [];
    const now = Date.now();
    for (let i = 0; i < keys.length; i += CHUNK) {
      const ids = keys.slice(i, i + CHUNK);
      const docs = await this.#run(
        "read from MongoStore",
        () => this.#docs.find({ _id: { $in: ids } }).toArray(),
      );
      for (const doc of docs) {
        if (withExpired || !expired(doc, now)) out.set(doc._id, doc);
        else stale.push(doc._id);
      }
    }
    if (stale.length > 0) {
      const filter = { _id: { $in: stale }, expiresAt: { $lte: new Date(now) } };
      await this.#run("read from MongoStore", () => this.#docs.deleteMany(filter));
    }
    return out;
  }

  /** Throws when a key holds something other than a number (expired documents are deleted). */
  async #checkNumbers(keys: string[]): Promise<void> {
    const docs = await this.#read(keys);
    for (const [key, doc] of docs) {
      if (doc.bytes !== undefined || typeof doc.value !== "number") {
        throw new TypeError(`Cannot increment key "${key}": its value is not a number`);
      }
    }
  }

  #encode(
    key: string,
    value: unknown,
    expiresAt: Date | undefined,
  ): Promise<Omit<StoreDoc, "_id">> {
    return encodeDoc(key, value, {
      driver: this.#driver,
      compressAbove: this.#compress,
      expiresAt,
    });
  }

  #run<T>(what: string, call: () => Promise<T>): Promise<T> {
    return attempt(what, this.#where, call);
  }

  #open(): void {
    if (this.#closed) {
      throw new SluiceError("E_CLOSED", `Cannot use MongoStore at ${this.#where}: it is closed`);
    }
  }
}

function notNumber(error: unknown, key: string): unknown {
  const code = (error as { code?: unknown } | null)?.code;
  if (code === 14 || /non-numeric/.test(String((error as Error | null)?.message))) {
    return new TypeError(`Cannot increment key "${key}": its value is not a number`, {
      cause: error,
    });
  }
  return error;
}
