/**
 * `RedisStore`: a {@linkcode Store} on Redis (ioredis), standalone or cluster.
 *
 * @module
 */
import { Buffer } from "node:buffer";
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
import { decodeBytes, encodeBytes, numberText } from "../_value_codec.ts";
import type { Store, StoreSetOptions } from "../store.ts";
import { attempt, connect, type Connection, disconnect, target } from "./_client.ts";
import type { Cluster, Redis } from "./_deps.ts";
import { hashFields, hashRecord } from "./_hash_codec.ts";
import { INCREMENT_LUA, MERGE_LUA } from "./_scripts.ts";

/** Options of {@linkcode RedisStore.open}. */
export interface RedisStoreOptions {
  /**
   * Server URL, `redis://[user:password@]host[:port][/db]` (`rediss://` for TLS). Credentials go
   * to ioredis only, never into messages. Default `"redis://127.0.0.1:6379"`.
   */
  url?: string;
  /** Connect to a Redis Cluster through these seed nodes (`"host:port"`) instead of `url`. */
  cluster?: { nodes: string[] };
  /** Prefix of every Redis key of this store (its namespace), e.g. `"app:"`. Default `""`. */
  keyPrefix?: string;
  /**
   * - `"value"` (default): each value is one Redis string, V8-serialised (any structured-cloneable
   *   value; finite numbers as decimal text, so `INCRBYFLOAT` works on them).
   * - `"hash"`: each value is a plain object stored as a Redis hash, one JSON-encoded field per
   *   property: other programs can read fields, and `mergeMany` is a native `HSET`. Values must
   *   be JSON-compatible; `{}` is stored as nothing; there is no `increment`.
   */
  layout?: "value" | "hash";
  /** gzip values whose encoding is longer than this many bytes. Default: never. */
  compressAboveBytes?: number;
  /** Time to establish a connection, ms. Default 5000. */
  connectTimeoutMs?: number;
  /**
   * Reconnection attempts (with backoff from 50 ms doubling to 2 s) a command waits for while the
   * server is unreachable before it fails with a `RetriableError`. Default 3.
   */
  maxRetriesPerRequest?: number;
  /** Further ioredis options, passed through (`tls`, `username`, `password`, `db`, …). */
  clientOptions?: Record<string, unknown>;
}

interface Scripts {
  sluiceIncrement(...args: (string | number)[]): Promise<number>;
  sluiceMerge(...args: (string | number | Uint8Array)[]): Promise<number[]>;
}

type Client = (Redis | Cluster) & Scripts;
const CHUNK = 500;
const MAX_ATTEMPTS = 32;

/**
 * A store on Redis. Batches are one round trip: `getMany` is `MGET`, `setMany` one `MULTI` of
 * `MSET` (or `SET … PX` with a TTL), `incrementMany` and `mergeMany` one Lua script per 500 keys
 * that checks every key before writing any. TTLs are Redis's own (`PX`), `scan` is `SCAN MATCH`.
 * On a cluster, batch commands go key by key (auto-pipelined per node) and are atomic per key
 * only. The client reconnects by itself; commands failing meanwhile throw `RetriableError`.
 *
 * A worker that opens one needs `net` to the server and unrestricted `env` (ioredis's `debug`
 * dependency lists the environment when it loads).
 *
 * @example Values, counters and TTLs
 * ```ts
 * import { RedisStore } from "@sluice/sluice";
 * import assert from "node:assert/strict";
 *
 * const url = Deno.env.get("SLUICE_REDIS_URL") ?? "redis://127.0.0.1:6390";
 * await using store = await RedisStore.open({ url, keyPrefix: `doc:${crypto.randomUUID()}:` });
 * await store.setMany([["sku:1", { name: "pen", tags: new Set(["blue"]) }], ["sku:2", 7]]);
 * assert.deepEqual(await store.get("sku:1"), { name: "pen", tags: new Set(["blue"]) });
 * assert.equal(await store.increment("sku:2", 3), 10);
 * await store.set("session", "x", { ttlMs: 60_000 });
 * const keys = [];
 * for await (const [key] of store.scan("sku:")) keys.push(key);
 * assert.deepEqual(keys, ["sku:1", "sku:2"]);
 * for (const key of [...keys, "session"]) await store.delete(key);
 * ```
 */
export class RedisStore implements Store, AsyncDisposable {
  readonly #client: Client;
  readonly #nodes: () => Redis[];
  readonly #cluster: boolean;
  readonly #prefix: string;
  readonly #hash: boolean;
  readonly #compress: number | undefined;
  readonly #where: string;
  #closed = false;

  private constructor(
    client: Client,
    o: Required<Pick<RedisStoreOptions, "keyPrefix">> & {
      cluster: boolean;
      hash: boolean;
      compress: number | undefined;
      where: string;
    },
  ) {
    this.#client = client;
    this.#cluster = o.cluster;
    this.#nodes = o.cluster ? () => (client as Cluster).nodes("master") : () => [client as Redis];
    this.#prefix = o.keyPrefix;
    this.#hash = o.hash;
    this.#compress = o.compress;
    this.#where = o.where;
  }

  /**
   * Connects (ioredis is loaded on first use) and waits until the server answers.
   *
   * @param options URL or cluster nodes, key prefix, layout, compression, client options.
   * @returns The store; close it with `close()` or `await using`.
   * @throws {SluiceError} `E_STORE` when the server cannot be reached (the message names the
   *   host, never credentials).
   * @throws {RangeError} When an option is out of range.
   *
   * @example
   * ```ts
   * import { RedisStore } from "@sluice/sluice";
   * import assert from "node:assert/strict";
   *
   * await assert.rejects(
   *   RedisStore.open({ url: "redis://:secret@127.0.0.1:1", connectTimeoutMs: 500 }),
   *   (e: Error) => /127\.0\.0\.1:1/.test(e.message) && !e.message.includes("secret"),
   * );
   * ```
   */
  static async open(options: RedisStoreOptions = {}): Promise<RedisStore> {
    const {
      url = "redis://127.0.0.1:6379",
      keyPrefix = "",
      layout = "value",
      connectTimeoutMs = 5_000,
      maxRetriesPerRequest = 3,
      clientOptions = {},
    } = options;
    if (layout !== "value" && layout !== "hash") {
      throw new RangeError(`Cannot open RedisStore: layout must be "value" or "hash"`);
    }
    const compress = compressThreshold(options.compressAboveBytes, "RedisStore");
    const connection: Connection = {
      url,
      connectTimeoutMs,
      maxRetriesPerRequest,
      clientOptions,
      ...(options.cluster ? { cluster: options.cluster } : {}),
    };
    const client = await connect(connection) as Client;
    client.defineCommand("sluiceIncrement", { lua: INCREMENT_LUA });
    client.defineCommand("sluiceMerge", { lua: MERGE_LUA });
    return new RedisStore(client, {
      keyPrefix,
      cluster: options.cluster !== undefined,
      hash: layout === "hash",
      compress,
      where: target(connection),
    });
  }

  /** Reads one value; `undefined` when absent or expired. */
  async get<T = unknown>(key: string): Promise<T | undefined> {
    return (await this.getMany<T>([key]))[0];
  }

  /** Reads several values with `MGET` (`HGETALL` per key for hashes), in the order of `keys`. */
  async getMany<T = unknown>(keys: readonly string[]): Promise<(T | undefined)[]> {
    this.#open();
    const ids = keys.map((k) => this.#id(checkKey(k, "get")));
    return await this.#run("read from RedisStore", async () => {
      if (this.#hash) {
        const replies = await Promise.all(ids.map((id) => this.#client.hgetall(id)));
        return replies.map(hashRecord) as (T | undefined)[];
      }
      const raw = await this.#raw(ids);
      return await Promise.all(raw.map((b) => b === null ? undefined : decodeBytes(b))) as (
        | T
        | undefined
      )[];
    });
  }

  /** Writes one value. */
  set(key: string, value: unknown, options: StoreSetOptions = {}): Promise<void> {
    return this.setMany([[key, value]], options);
  }

  /**
   * Writes several values in one `MULTI` (atomic on a standalone server); for a key given twice,
   * the last value wins.
   *
   * @throws {RangeError} When `ttlMs` is not positive.
   * @throws {TypeError} When a key is not a string; in the `"hash"` layout, when a value is not a
   *   plain object.
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
    if (this.#hash) {
      const ops: (string | number)[][] = [];
      for (const [key, value] of last) {
        const id = this.#id(key);
        const fields = hashFields(key, value);
        ops.push(["del", id]);
        if (fields.length > 0) ops.push(["hset", id, ...fields]);
        if (ttl !== undefined && fields.length > 0) ops.push(["pexpire", id, ttl]);
      }
      return await this.#exec("write to RedisStore", ops);
    }
    const encoded: [string, string | Uint8Array][] = [];
    for (const [key, value] of last) {
      encoded.push([this.#id(key), numberText(value) ?? await this.#encode(value, key)]);
    }
    const ops: (string | number | Uint8Array)[][] = [];
    if (ttl !== undefined || this.#cluster) {
      for (const [id, v] of encoded) {
        ops.push(ttl === undefined ? ["set", id, v] : ["set", id, v, "PX", ttl]);
      }
    } else {
      for (let i = 0; i < encoded.length; i += CHUNK) {
        ops.push(["mset", ...encoded.slice(i, i + CHUNK).flat()]);
      }
    }
    await this.#exec("write to RedisStore", ops);
  }

  /** Deletes a key (absent is fine). */
  async delete(key: string): Promise<void> {
    this.#open();
    const id = this.#id(checkKey(key, "delete"));
    await this.#run("delete from RedisStore", () => this.#client.del(id));
  }

  /**
   * Lists entries whose key starts with `prefix`, in UTF-8 byte order of keys: `SCAN MATCH`
   * collects the matching keys (on every master of a cluster), then values are read 500 at a time.
   */
  async *scan<T = unknown>(prefix = ""): AsyncIterableIterator<[string, T]> {
    this.#open();
    if (typeof prefix !== "string") throw new TypeError("Cannot scan: prefix is not a string");
    const pattern = escapeGlob(this.#id(prefix)) + "*";
    const type = this.#hash ? "hash" : "string";
    const found = new Set<string>();
    for (const node of this.#nodes()) {
      let cursor = "0";
      do {
        const [next, keys] = await this.#run(
          "scan RedisStore",
          () => node.call("SCAN", cursor, "MATCH", pattern, "COUNT", 1000, "TYPE", type),
        ) as [string, string[]];
        for (const id of keys) found.add(id.slice(this.#prefix.length));
        cursor = next;
      } while (cursor !== "0");
    }
    const sorted = [...found].sort(compareKeys);
    for (let i = 0; i < sorted.length; i += CHUNK) {
      const page = sorted.slice(i, i + CHUNK);
      if (this.#hash) {
        const records = await this.getMany<T>(page); // a hash cannot hold undefined
        for (let j = 0; j < page.length; j++) {
          if (records[j] !== undefined) yield [page[j]!, records[j]!];
        }
        continue;
      }
      // Raw replies: a key deleted meanwhile is null, a stored undefined is an entry.
      const raw = await this.#run("scan RedisStore", () => this.#raw(page.map((k) => this.#id(k))));
      for (let j = 0; j < page.length; j++) {
        if (raw[j] !== null) yield [page[j]!, await decodeBytes(raw[j]!) as T];
      }
    }
  }

  /**
   * Adds `by` to the number at `key` with `INCRBYFLOAT` (absent counts as 0; the key keeps its
   * TTL). Redis adds in long double precision: `0.1 + 0.2` gives `0.3`.
   *
   * @throws {TypeError} When `by` is not finite, the value is not a number, or the layout is
   *   `"hash"`.
   */
  async increment(key: string, by: number): Promise<number> {
    this.#open();
    checkKey(key, "increment");
    checkAmount(by, key);
    this.#noHash(key);
    const id = this.#id(key);
    try {
      return Number(
        await this.#run("increment in RedisStore", () => this.#client.incrbyfloat(id, by)),
      );
    } catch (e) {
      throw notNumber(e, key);
    }
  }

  /**
   * Adds amounts to several keys, one Lua script per 500 keys that checks every key holds a
   * number (or nothing) before adding to any.
   *
   * @throws {TypeError} When a value is not a number (nothing of that script's keys is written).
   */
  async incrementMany(
    entries: Iterable<readonly [string, number]>,
    options: StoreSetOptions = {},
  ): Promise<void> {
    this.#open();
    const ttl = checkTtl(options.ttlMs, "increment") ?? 0;
    const sums = sumAmounts(entries);
    for (const key of sums.keys()) this.#noHash(key);
    const list = [...sums];
    const groups = this.#cluster ? list.map((e) => [e]) : chunks(list, CHUNK);
    await Promise.all(groups.map(async (group) => {
      const ids = group.map(([k]) => this.#id(k));
      try {
        await this.#run(
          "increment in RedisStore",
          () => this.#client.sluiceIncrement(ids.length, ...ids, ttl, ...group.map(([, by]) => by)),
        );
      } catch (e) {
        const key = /NOTNUMBER (.*)$/.exec(String((e as Error).message))?.[1];
        throw notNumber(e, key === undefined ? group[0]![0] : key.slice(this.#prefix.length));
      }
    }));
  }

  /**
   * Shallow-merges plain objects into the entries at their keys. In the `"value"` layout: read,
   * merge, then a compare-and-set script that writes the keys not changed meanwhile (the others
   * are read and merged again), so no concurrent update is lost; in the `"hash"` layout: `HSET`.
   *
   * @throws {TypeError} When fields are not a plain object.
   */
  async mergeMany(
    entries: Iterable<readonly [string, Readonly<Record<string, unknown>>]>,
    options: StoreSetOptions = {},
  ): Promise<void> {
    this.#open();
    const ttl = checkTtl(options.ttlMs, "merge") ?? 0;
    const folded = foldFields(entries);
    if (this.#hash) {
      const ops: (string | number)[][] = [];
      for (const [key, fields] of folded) {
        const args = hashFields(key, fields);
        if (args.length === 0) continue;
        ops.push(["hset", this.#id(key), ...args]);
        ops.push(ttl > 0 ? ["pexpire", this.#id(key), ttl] : ["persist", this.#id(key)]);
      }
      return await this.#exec("merge into RedisStore", ops);
    }
    let pending = [...folded.keys()];
    for (let round = 0; pending.length > 0; round++) {
      if (round === MAX_ATTEMPTS) {
        throw new SluiceError(
          "E_STORE",
          `Cannot merge ${pending.length} key(s) into RedisStore: they kept changing under concurrent writers`,
        );
      }
      const groups = this.#cluster ? pending.map((k) => [k]) : chunks(pending, CHUNK);
      const lost = await Promise.all(groups.map((g) => this.#casMerge(g, folded, ttl)));
      pending = lost.flat();
    }
  }

  /** Closes the connection. Calling it twice is not an error. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await disconnect(this.#client);
  }

  /** Closes the store (for `await using`). */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  /** One compare-and-set round; returns the keys changed meanwhile. */
  async #casMerge(
    keys: string[],
    folded: Map<string, Record<string, unknown>>,
    ttl: number,
  ): Promise<string[]> {
    const ids = keys.map((k) => this.#id(k));
    const raw = await this.#run("merge into RedisStore", () => this.#raw(ids));
    const args: (string | number | Uint8Array)[] = [ids.length, ...ids, ttl];
    for (let i = 0; i < keys.length; i++) {
      const old = raw[i] === null ? undefined : await decodeBytes(raw[i]!);
      const next = { ...(isPlainObject(old) ? old : {}), ...folded.get(keys[i]!) };
      args.push(raw[i] === null ? "" : await sha1(raw[i]!), await this.#encode(next, keys[i]!));
    }
    const failed = await this.#run(
      "merge into RedisStore",
      () => this.#client.sluiceMerge(...args),
    );
    return failed.map((i) => keys[i - 1]!);
  }

  /** Raw values of ids: MGET in chunks (GET per key on a cluster). */
  async #raw(ids: string[]): Promise<(Uint8Array | null)[]> {
    if (this.#cluster) return await Promise.all(ids.map((id) => this.#client.getBuffer(id)));
    const parts = await Promise.all(chunks(ids, CHUNK).map((c) => this.#client.mgetBuffer(c)));
    return parts.flat();
  }

  /** Runs commands in one MULTI (standalone), or one by one, pipelined (cluster). */
  async #exec(what: string, ops: (string | number | Uint8Array)[][]): Promise<void> {
    if (ops.length === 0) return;
    const results = await this.#run(what, () => {
      if (this.#cluster) {
        return Promise.all(
          ops.map(([name, ...args]) =>
            this.#client.call(String(name), ...(args as string[])).then(
              (r) => [null, r] as [null, unknown],
              (e) => [e, null] as [Error, null],
            )
          ),
        );
      }
      const multi = this.#client.multi();
      for (const [name, ...args] of ops) multi.call(String(name), ...(args as string[]));
      return multi.exec() as Promise<[Error | null, unknown][] | null>;
    });
    const failed = results?.find(([e]) => e !== null)?.[0];
    if (failed) throw failed;
  }

  /**
   * V8 bytes (gzip above the threshold), as a Buffer: ioredis sends any other Uint8Array (such as
   * gzip output) as the text of its numbers, "31,139,8,…".
   */
  async #encode(value: unknown, key: string): Promise<Buffer> {
    const bytes = await encodeBytes(value, key, this.#compress);
    return Buffer.isBuffer(bytes)
      ? bytes
      : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  }

  #run<T>(what: string, call: () => Promise<T>): Promise<T> {
    return attempt(what, this.#where, call);
  }

  #id(key: string): string {
    return this.#prefix + key;
  }

  #noHash(key: string): void {
    if (this.#hash) {
      throw new TypeError(
        `Cannot increment key "${key}": a RedisStore with layout "hash" holds records, not numbers`,
      );
    }
  }

  #open(): void {
    if (this.#closed) {
      throw new SluiceError("E_CLOSED", `Cannot use RedisStore at ${this.#where}: it is closed`);
    }
  }
}

function chunks<T>(list: T[], size: number): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < list.length; i += size) out.push(list.slice(i, i + size));
  return out;
}

function escapeGlob(text: string): string {
  return text.replace(/[*?[\]\\]/g, "\\$&");
}

async function sha1(bytes: Uint8Array): Promise<string> {
  const digest = await crypto.subtle.digest("SHA-1", bytes as Uint8Array<ArrayBuffer>);
  return Array.from(new Uint8Array(digest), (b) => b.toString(16).padStart(2, "0")).join("");
}

function notNumber(error: unknown, key: string): unknown {
  const text = String((error as Error | null)?.message ?? "");
  if (/not a valid float|WRONGTYPE|NOTNUMBER/.test(text)) {
    return new TypeError(`Cannot increment key "${key}": its value is not a number`, {
      cause: error,
    });
  }
  return error;
}
