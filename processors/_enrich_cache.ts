// The read-through cache of one `enrich` instance: an LRU (lru-cache, the package MemoryStore
// uses) bounded by entries and optionally by bytes, with a TTL for found entries and a shorter one
// for absent keys (negative caching). Expiry is checked here against an injectable clock rather
// than with lru-cache's own TTL, which treats a start time of 0 as "no TTL" and keeps an entry one
// millisecond past its TTL: here an entry cached at t is served while now < t + ttl.
import { serialize } from "node:v8";
import { LRUCache } from "../stores/memory/_deps.ts";

/** Limits of an {@linkcode EnrichCache}. */
export interface EnrichCacheLimits {
  /** Most entries (found and absent keys together); the least recently used go first. */
  readonly maxEntries: number;
  /** How long a found value is served from the cache, ms. */
  readonly ttlMs: number;
  /** How long an absent key is remembered as absent, ms; `0` does not remember absent keys. */
  readonly negativeTtlMs: number;
  /** Most bytes (V8-serialised size of values plus keys); a bigger value is not cached. */
  readonly maxBytes?: number;
}

/** A cached lookup: the value found, or the knowledge that the key has no entry. */
export type CacheEntry = { readonly found: true; readonly value: unknown } | {
  readonly found: false;
};

/** A cached lookup and when it expires. */
type Held = CacheEntry & { readonly expires: number };

/** A read-through cache of store lookups, per stage instance. */
export class EnrichCache {
  readonly #lru: LRUCache<string, Held>;
  readonly #limits: EnrichCacheLimits;
  readonly #now: () => number;

  /**
   * @param limits Entry and byte limits and the two TTLs.
   * @param now The clock TTLs are measured with, ms.
   */
  constructor(limits: EnrichCacheLimits, now: () => number) {
    this.#limits = limits;
    this.#now = now;
    const { maxBytes } = limits;
    this.#lru = new LRUCache<string, Held>({
      max: limits.maxEntries,
      ...(maxBytes === undefined ? {} : {
        maxSize: maxBytes,
        maxEntrySize: maxBytes,
        sizeCalculation: (held: Held, key: string) => entryBytes(key, held),
      }),
    });
  }

  /** The cached lookup of `key` (marking it recently used), or `undefined` when not cached. */
  get(key: string): CacheEntry | undefined {
    const held = this.#lru.get(key);
    if (held === undefined || this.#now() < held.expires) return held;
    this.#lru.delete(key);
    return undefined;
  }

  /** Caches what a store read returned for `key`: a value, or `undefined` for no entry. */
  set(key: string, value: unknown): void {
    const now = this.#now();
    if (value !== undefined) {
      this.#lru.set(key, { found: true, value, expires: now + this.#limits.ttlMs });
    } else if (this.#limits.negativeTtlMs > 0) {
      this.#lru.set(key, { found: false, expires: now + this.#limits.negativeTtlMs });
    } else this.#lru.delete(key);
  }

  /** Entries held, expired ones not yet noticed included. */
  get size(): number {
    return this.#lru.size;
  }
}

/** Bytes an entry takes: its key (UTF-16) plus its value's V8 serialisation, plus overhead. */
function entryBytes(key: string, held: Held): number {
  const value = held.found ? serialize(held.value).byteLength : 0;
  return Math.max(1, 2 * key.length + value + 24);
}
