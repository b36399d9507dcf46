/**
 * `kvSink`: a sink stage that writes records into a {@linkcode KvStore}, one atomic write per
 * batch.
 *
 * @module
 */
import { z } from "../actors/_deps.ts";
import { parseConfig } from "../actors/_config.ts";
import { compileFn, type InlineFn, inlineFn } from "../actors/inline_fn.ts";
import type { StreamRecord } from "../actors/record.ts";
import { defineSink, type SinkDefinition } from "../actors/stage.ts";
import type { StageOptions, StageRef } from "../actors/stage_ref.ts";
import { DEFAULT_KV_PATH, KvStore } from "./kv/kv_store.ts";

/** How a record changes the entry at its key. */
export type StoreSinkMode = "set" | "merge" | "increment";

/** Config of the {@linkcode storeSinkStage} definition (what {@linkcode kvSink} builds). */
export interface StoreSinkConfig {
  /** The backend. Only `"kv"` for now. */
  store: "kv";
  /** Database path (absolute, or relative to the working directory), or `":memory:"`. */
  path: string;
  /** Store namespace (see `KvStoreOptions.namespace`). Default `[]`. */
  namespace?: string[];
  /** Field path of the key in the value, or an inline function; default: the record's `key`. */
  key?: string | InlineFn;
  /** See {@linkcode KvSinkOptions.mode}. */
  mode: StoreSinkMode;
  /** See {@linkcode KvSinkOptions.field}. */
  field?: string;
  /** Time to live of written entries, ms. Default: none. */
  ttlMs?: number;
}

const storeSinkConfig: z.ZodType<StoreSinkConfig> = z.object({
  store: z.literal("kv"),
  path: z.string().min(1),
  namespace: z.array(z.string()).optional(),
  key: z.union([z.string().min(1), z.object({ fn: z.string().min(1) }).strict()]).optional(),
  mode: z.enum(["set", "merge", "increment"]),
  field: z.string().min(1).optional(),
  ttlMs: z.number().positive().finite().optional(),
}).strict();

type KeyFn = (value: unknown, record: StreamRecord<unknown>) => unknown;

/**
 * The store sink definition. For each batch it computes every record's key and contribution,
 * folds contributions to the same key in record order, and writes them with one `setMany`
 * (`"set"`) or one checked `updateMany` (`"merge"`, `"increment"`) — atomic per KV batch
 * (1000 entries / 800 KiB; up to 100 keys for checked writes). Records without a usable key or
 * value are dead-lettered once the batch is written. Prefer the {@linkcode kvSink} builder.
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
    const store = await KvStore.open(config.path, { namespace: config.namespace ?? [] });
    const keyOf: KeyFn = config.key === undefined
      ? (_, r) => r.key
      : typeof config.key === "string"
      ? ((path) => (v) => getField(v, path))(config.key)
      : compileFn<KeyFn>(config.key);
    const { mode, field } = config;
    const ttl = config.ttlMs === undefined ? {} : { ttlMs: config.ttlMs };
    return {
      async write(records, ctx) {
        const folded = new Map<string, unknown>();
        const bad: [StreamRecord<unknown>, string][] = [];
        for (const record of records) {
          const key = keyOf(record.value, record);
          if (typeof key !== "string" && !(typeof key === "number" && Number.isFinite(key))) {
            bad.push([record, `Cannot write record to store: its key is ${describe(key)}`]);
            continue;
          }
          const k = String(key);
          const part = field === undefined ? record.value : getField(record.value, field);
          if (mode === "set") {
            if (part === undefined && field !== undefined) {
              bad.push([record, `Cannot write record to store: field "${field}" is missing`]);
            } else folded.set(k, part);
          } else if (mode === "merge") {
            if (!isPlainObject(part)) {
              bad.push([
                record,
                `Cannot merge record: ${what(field)} is ${describe(part)}, not an object`,
              ]);
            } else folded.set(k, { ...(folded.get(k) as object | undefined), ...part });
          } else if (typeof part !== "number" || !Number.isFinite(part)) {
            bad.push([record, `Cannot increment by record: ${what(field)} is ${describe(part)}`]);
          } else folded.set(k, ((folded.get(k) as number | undefined) ?? 0) + part);
        }
        if (mode === "set") await store.setMany(folded, ttl);
        else if (mode === "merge") {
          await store.updateMany(folded.keys(), (old, k) => ({
            ...(isPlainObject(old) ? old : {}),
            ...(folded.get(k) as object),
          }), ttl);
        } else {
          await store.updateMany(folded.keys(), (old, k) => {
            if (old !== undefined && typeof old !== "number") {
              throw new TypeError(`Cannot increment key "${k}": its value is not a number`);
            }
            return (old ?? 0) + (folded.get(k) as number);
          }, ttl);
        }
        // Only now: a failed write is retried, and dead letters must not be sent twice.
        for (const [record, reason] of bad) ctx.deadLetter(record, reason);
      },
      close: () => store.close(),
    };
  },
});

/** Options of {@linkcode kvSink}. */
export interface KvSinkOptions<T = unknown> {
  /** Database path, or `":memory:"`. Default `".sluice/sluice.kv"`. */
  path?: string;
  /** Store namespace. Default `[]`. */
  namespace?: string[];
  /**
   * Where each record's key comes from: a field path of the value (`"sku"`, `"customer.id"`), or
   * an inline function `(value, record) => string` that closes over nothing. Default: the
   * record's `key`. Records whose key is not a string (or finite number) are dead-lettered.
   */
  key?: string | ((value: T, record: StreamRecord<T>) => string | number);
  /**
   * - `"set"` (default): the entry becomes the value (or its `field`); replays write the same.
   * - `"merge"`: the value (or its `field`), a plain object, is shallow-merged into the entry;
   *   replays write the same.
   * - `"increment"`: the value (or its `field`), a finite number, is added to the entry. A batch
   *   replayed after a crash between the write and its ack is added again (at-least-once).
   */
  mode?: StoreSinkMode;
  /** Field path of the part of the value to write (or to add). Default: the whole value. */
  field?: string;
  /** Time to live of written entries, ms. Default: none. */
  ttlMs?: number;
}

/**
 * A sink that writes records into a {@linkcode KvStore} file. It runs in its own worker with
 * read and write permission on that file only (the builder creates the file's directory, as the
 * worker may not). Read the results back with `KvStore.open(path)` after the run.
 *
 * @param options Path, key, mode, field, TTL.
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
  const { key, path = DEFAULT_KV_PATH, mode = "set", ...rest } = options;
  const config = {
    store: "kv",
    path: absolute(path),
    mode,
    ...rest,
    ...(key === undefined
      ? {}
      : { key: typeof key === "function" ? inlineFn(key, "kvSink key") : key }),
  };
  parseConfig(storeSinkStage, stageOptions.name ?? "storeSink", config);
  const file = config.path;
  if (file !== ":memory:") {
    try {
      Deno.mkdirSync(file.replace(/[/\\][^/\\]*$/, ""), { recursive: true });
    } catch {
      // Reported when the sink opens the store.
    }
  }
  const permissions = file === ":memory:" ? "none" as const : { read: [file], write: [file] };
  return {
    kind: "sink",
    module: import.meta.url,
    export: "storeSinkStage",
    config,
    options: { permissions, ...stageOptions },
  };
}

function absolute(path: string): string {
  if (path === ":memory:" || path.startsWith("/") || /^[A-Za-z]:[/\\]/.test(path)) return path;
  try {
    return `${Deno.cwd()}/${path.replace(/^\.\//, "")}`;
  } catch {
    return path; // no read permission for the cwd: workers share it anyway
  }
}

function getField(value: unknown, path: string): unknown {
  let current = value;
  for (const part of path.split(".")) {
    if (typeof current !== "object" || current === null) return undefined;
    current = (current as Record<string, unknown>)[part];
  }
  return current;
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  if (typeof value !== "object" || value === null || Array.isArray(value)) return false;
  const proto = Object.getPrototypeOf(value);
  return proto === Object.prototype || proto === null;
}

function what(field: string | undefined): string {
  return field === undefined ? "the value" : `field "${field}"`;
}

function describe(v: unknown): string {
  if (v === null || v === undefined) return String(v);
  if (typeof v === "number") return String(v);
  return Array.isArray(v) ? "an array" : `a ${typeof v}`;
}
