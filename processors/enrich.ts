/**
 * `enrich`: joins each record with the entry a store holds for its key, through a read-through
 * cache (LRU + TTL, negative caching) and one batched store read per batch.
 *
 * @module
 */
import { z } from "../actors/_deps.ts";
import { parseConfig } from "../actors/_config.ts";
import { compileFn, type InlineFn, inlineFn } from "../actors/inline_fn.ts";
import type { StreamRecord } from "../actors/record.ts";
import { defineProcessor, type ProcessorDefinition, type StageContext } from "../actors/stage.ts";
import type { StageOptions, StageRef } from "../actors/stage_ref.ts";
import { normalizeDescriptor, storeDescriptorSchema } from "../stores/_descriptor.ts";
import { openStore, type StoreDescriptor, storePermissions } from "../stores/open_store.ts";
import { fieldSchema, inlineFnSchema, processorRef } from "./_config.ts";
import { EnrichCache } from "./_enrich_cache.ts";
import { type Lookup, readKeys } from "./_enrich_lookup.ts";
import { type KeyFn, keyFn, quoteKey, storeKey, withField } from "./_enrich_record.ts";

/** What happens to a record whose key has no entry in the store. */
export type EnrichOnMissing = "keep" | "drop" | "deadLetter";

/** The read-through cache of each `enrich` instance. */
export interface EnrichCacheOptions {
  /** Most cached keys, found or absent; the least recently used go first. Default 10 000. */
  maxEntries?: number;
  /** How long a found entry is served from the cache until it is read again, ms. Default 60 000. */
  ttlMs?: number;
  /**
   * How long a key without an entry is remembered as absent, ms, so that a stream of records
   * with an unknown key reads the store once per period, not once per record. `0` does not
   * remember absent keys. Default 5 000.
   */
  negativeTtlMs?: number;
  /**
   * Most bytes the cache holds (V8-serialised size of values, plus keys); a value bigger than
   * this is not cached. Default: no limit.
   */
  maxBytes?: number;
}

/** Config of the {@linkcode enrichStage} definition (what {@linkcode enrich} builds). */
export interface EnrichConfig {
  /** The store to open in the stage's worker. */
  store: StoreDescriptor;
  /** Field path of the lookup key in the value, or an inline function. Default: record `key`. */
  key?: string | InlineFn;
  /** Field path the entry found goes to. Default `"enriched"` (unless `merge` is given). */
  into?: string;
  /** Inline function `(value, found, record) => newValue`, instead of `into`. */
  merge?: InlineFn;
  /** See {@linkcode EnrichOptions.onMissing}. Default `"keep"`. */
  onMissing?: EnrichOnMissing;
  /** Cache limits and TTLs. */
  cache?: EnrichCacheOptions;
  /** See {@linkcode EnrichOptions.cacheHeader}. Default: none. */
  cacheHeader?: string;
}

const path = fieldSchema.regex(/^[^.]+(\.[^.]+)*$/, 'expected a field path like "a" or "a.b"');

const enrichConfig: z.ZodType<EnrichConfig> = z.object({
  store: storeDescriptorSchema,
  key: z.union([fieldSchema, inlineFnSchema]).optional(),
  into: path.optional(),
  merge: inlineFnSchema.optional(),
  onMissing: z.enum(["keep", "drop", "deadLetter"]).optional(),
  cache: z.object({
    maxEntries: z.number().int().safe().positive().optional(),
    ttlMs: z.number().positive().finite().optional(),
    negativeTtlMs: z.number().nonnegative().finite().optional(),
    maxBytes: z.number().int().safe().positive().optional(),
  }).strict().optional(),
  cacheHeader: z.string().min(1).optional(),
}).strict().refine((c) => c.into === undefined || c.merge === undefined, {
  path: ["merge"],
  message: "cannot be given together with into (merge decides where the entry goes)",
});

type MergeFn = (value: unknown, found: unknown, record: StreamRecord<unknown>) => unknown;

/** A record's lookup key (`hit`: no store read was made for it), or why it has none. */
type Plan = { key: string; hit: boolean } | { reason: string } | { error: unknown };

/**
 * The `enrich` processor definition (config: {@linkcode EnrichConfig}). It opens the store its
 * config describes in its worker. `beforeBatch` computes every record's lookup key, takes what
 * the cache holds and reads the distinct keys it misses with one `getMany` (per 1 000 keys),
 * filling the cache with the values found and with absent keys; `process` then emits the records
 * in input order. A connection fault of the store (`RetriableError`) is thrown to the runtime,
 * which retries the batch with backoff for as long as it lasts (the batch is held, backpressure
 * stops the upstream); any other read error fails the records of that key, which are retried
 * (`maxRetries`) and dead-lettered. Stateless: the cache is per instance. Prefer the
 * {@linkcode enrich} builder.
 *
 * @example
 * ```ts
 * import { enrichStage } from "@sluice/sluice";
 * import assert from "node:assert/strict";
 *
 * assert.equal(enrichStage.name, "enrich");
 * assert.equal(enrichStage.stateful, undefined);
 * ```
 */
export const enrichStage: ProcessorDefinition<unknown, unknown, EnrichConfig> = defineProcessor({
  name: "enrich",
  config: enrichConfig,
  async open(config, ctx) {
    const c = config.cache ?? {};
    const cache = new EnrichCache({
      maxEntries: c.maxEntries ?? 10_000,
      ttlMs: c.ttlMs ?? 60_000,
      negativeTtlMs: c.negativeTtlMs ?? 5_000,
      ...(c.maxBytes === undefined ? {} : { maxBytes: c.maxBytes }),
    }, () => ctx.now());
    const keyOf = keyFn(
      typeof config.key === "object" ? compileFn<KeyFn>(config.key) : config.key,
    );
    const source = config.key === undefined
      ? "record key"
      : typeof config.key === "string"
      ? `field ${JSON.stringify(config.key)}`
      : "key function result";
    const merge = config.merge && compileFn<MergeFn>(config.merge);
    const into = config.into ?? "enriched";
    const onMissing = config.onMissing ?? "keep";
    const header = config.cacheHeader;
    const store = await openStore(config.store);

    /** The current batch: each record's plan, and what each of its keys was found to be. */
    let plans = new Map<StreamRecord<unknown>, Plan>();
    let looked = new Map<string, Lookup>();

    const plan = (record: StreamRecord<unknown>): Plan => {
      let raw: unknown;
      try {
        raw = keyOf(record.value, record);
      } catch (error) {
        return { error };
      }
      const k = storeKey(raw, source);
      return "key" in k ? { key: k.key, hit: true } : k;
    };

    const read = async (keys: string[]): Promise<void> => {
      if (keys.length === 0) return;
      for (const [key, lookup] of await readKeys(store, keys)) {
        looked.set(key, lookup);
        if (!("error" in lookup)) cache.set(key, lookup.found ? lookup.value : undefined);
      }
    };

    return {
      async beforeBatch(records) {
        plans = new Map();
        looked = new Map();
        const misses: string[] = [];
        for (const record of records) {
          const p = plan(record);
          plans.set(record, p);
          if (!("key" in p) || looked.has(p.key)) continue;
          const cached = cache.get(p.key);
          if (cached) looked.set(p.key, cached);
          else {
            looked.set(p.key, PENDING);
            misses.push(p.key);
            p.hit = false;
          }
        }
        await read(misses);
      },

      process(record, ctx) {
        const p = plans.get(record) ?? plan(record);
        if ("error" in p) {
          plans.delete(record); // a retry runs the key function again
          const message = (p.error as Error)?.message ?? String(p.error);
          throw new Error(`Cannot enrich record: the key function threw: ${message}`, {
            cause: p.error,
          });
        }
        if ("reason" in p) return ctx.deadLetter(record, p.reason);
        const lookup = looked.get(p.key);
        if (lookup !== undefined && lookup !== PENDING) return join(record, p, lookup, ctx);
        // Not in this batch, or its batched read failed: read it again now.
        const cached = cache.get(p.key);
        if (cached !== undefined) return join(record, p, cached, ctx);
        p.hit = false;
        return read([p.key]).then(() => join(record, p, looked.get(p.key)!, ctx));
      },

      close: () => store.close(),
    };

    /** The output for one record, given what its key was found to be. */
    function join(
      record: StreamRecord<unknown>,
      p: { key: string; hit: boolean },
      lookup: Lookup,
      ctx: StageContext<unknown>,
    ): StreamRecord<unknown> | void | Promise<StreamRecord<unknown>> {
      if ("error" in lookup) {
        looked.set(p.key, PENDING); // the runtime's retry reads the key again
        throw lookup.error;
      }
      if (!lookup.found) {
        if (onMissing === "drop") return;
        if (onMissing === "deadLetter") {
          return ctx.deadLetter(
            record,
            `Cannot enrich record: no entry for key ${quoteKey(p.key)}`,
          );
        }
      }
      const headers = header === undefined
        ? record.headers
        : { ...record.headers, [header]: p.hit ? "hit" : "miss" };
      const out = (value: unknown) =>
        headers === undefined ? { ...record, value } : { ...record, value, headers };
      const found = lookup.found ? copy(lookup.value) : undefined;
      if (merge) {
        const value = merge(record.value, found, record);
        return value instanceof Promise ? value.then(out) : out(value);
      }
      const r = withField(record.value, into, lookup.found ? found : null);
      if ("reason" in r) return ctx.deadLetter(record, r.reason);
      return out(r.value);
    }
  },
});

/** A key whose read is under way, or failed and is to be read again. */
const PENDING: Lookup = Object.freeze({ error: undefined });

/** Values are shared by every record (and the cache): each record gets its own copy. */
function copy(value: unknown): unknown {
  return typeof value === "object" && value !== null ? structuredClone(value) : value;
}

/** Options of {@linkcode enrich}. `I`: input values, `F`: store entries, `O`: output values. */
export interface EnrichOptions<I = unknown, O = unknown, F = unknown> {
  /**
   * Where each record's lookup key comes from: a field path of the value (`"customerId"`,
   * `"order.customer.id"`), or an inline function `(value, record) => key` that closes over
   * nothing. Default: the record's `key`. Finite numbers are looked up as their decimal text (as
   * `storeSink` writes them); a record whose key is anything else (missing, null, an object) is
   * dead-lettered with the reason.
   */
  key?: string | ((value: I, record: StreamRecord<I>) => string | number | null | undefined);
  /**
   * Field path of the value the entry found is put in (dots nest, objects along the path are
   * copied, not changed); `null` when the key has no entry and `onMissing` is `"keep"`. The value
   * must be a plain object, or the record is dead-lettered. Default `"enriched"`.
   */
  into?: string;
  /**
   * Builds the output value instead of `into`: `(value, found, record) => newValue`, sync or
   * async, closing over nothing. `found` is `undefined` when the key has no entry (with
   * `onMissing: "keep"`). A throw fails the record (retried, then dead-lettered).
   */
  merge?: (value: I, found: F | undefined, record: StreamRecord<I>) => O | Promise<O>;
  /**
   * A record whose key has no entry: `"keep"` passes it on (`into` set to `null`), `"drop"`
   * filters it out (it counts as done, like `filter`), `"deadLetter"` sends it to the dead-letter
   * sink with the reason `no entry for key "…"`. Default `"keep"`.
   */
  onMissing?: EnrichOnMissing;
  /** Cache limits and TTLs; see {@linkcode EnrichCacheOptions}. */
  cache?: EnrichCacheOptions;
  /**
   * Name of a header set on every emitted record to `"miss"` when its key was read from the store
   * for it (the first record of the batch with that key) or `"hit"` when the cache (or an earlier
   * record of the batch) answered: counting them gives the cache's hits and misses. Default: none.
   */
  cacheHeader?: string;
}

/**
 * Enriches each record with the entry a store holds for its key (a lookup join). The stage runs
 * in a worker, so it takes a descriptor of the store, not a Store object, opens the store there
 * and gets the least permissions it needs (`storePermissions`). Each instance keeps a
 * read-through cache: per batch, the distinct keys the cache misses are read with a single
 * `getMany`, values found and absent keys are cached (`cache.ttlMs`, `cache.negativeTtlMs`), and
 * records come out in input order. A `{ backend: "memory" }` store is the memory of the thread
 * that opens it: only in inline mode can it be one the caller filled.
 *
 * @param store The store to read, e.g. `{ backend: "redis", url: "redis://cache:6379" }`.
 * @param options Key, `into` or `merge`, `onMissing`, cache, `cacheHeader`; see
 *   {@linkcode EnrichOptions}.
 * @param stageOptions Stage options (name, parallelism, permissions, ...).
 * @returns A stage reference for a pipeline.
 * @throws {ConfigError} When the options are invalid (the message names the path).
 * @throws {TypeError} When `key` or `merge` is a function that references outer variables.
 *
 * @example Orders joined with their customer
 * ```ts
 * import { enrich, MemoryStore, testPipeline } from "@sluice/sluice";
 * import assert from "node:assert/strict";
 *
 * await using customers = new MemoryStore({ name: "customers-example" });
 * await customers.set("c1", { name: "Ada", tier: "gold" });
 * const { output } = await testPipeline(
 *   (flow) =>
 *     flow.via(enrich({ backend: "memory", name: "customers-example" }, {
 *       key: "customerId",
 *       into: "customer",
 *     })),
 *   [
 *     { value: { order: 1, customerId: "c1" }, ts: 0 },
 *     { value: { order: 2, customerId: "c7" }, ts: 1 },
 *   ],
 * );
 * assert.deepEqual(output.map((r) => r.value), [
 *   { order: 1, customerId: "c1", customer: { name: "Ada", tier: "gold" } },
 *   { order: 2, customerId: "c7", customer: null },
 * ]);
 * assert.throws(
 *   () => enrich({ backend: "memory" }, { cache: { ttlMs: 0 } }),
 *   /config\.cache\.ttlMs: Number must be greater than/,
 * );
 * ```
 */
export function enrich<I = unknown, O = unknown, F = unknown>(
  store: StoreDescriptor,
  options: EnrichOptions<I, O, F> = {},
  stageOptions: StageOptions = {},
): StageRef<I, O> {
  const { key, merge, ...rest } = options;
  const raw: Record<string, unknown> = { store, ...rest };
  if (key !== undefined) raw.key = typeof key === "function" ? inlineFn(key, "enrich key") : key;
  if (merge !== undefined) raw.merge = inlineFn(merge, "enrich merge");
  const parsed = parseConfig(enrichStage, stageOptions.name ?? "enrich", raw);
  const config = { ...raw, store: normalizeDescriptor(parsed.store) };
  return processorRef(enrichStage, import.meta.url, "enrichStage", config, {
    permissions: storePermissions(config.store),
    ...stageOptions,
  });
}
