// Batched store reads for `enrich`: the keys a batch missed in the cache are read with as few
// `getMany` calls as possible (one per CHUNK keys). A connection fault (a RetriableError, code
// E_RETRIABLE, which every store backend throws for one) is retried with backoff for as long as it
// takes, like a sink's write: the stage holds its batch and backpressure stops the upstream. Any
// other failure of a multi-key read is narrowed down key by key, so that one bad key fails only
// its own records.
import type { Store } from "../stores/store.ts";

/** Most keys per `getMany` call. */
export const CHUNK = 1_000;

/** What a read gave for one key: its value, no entry, or the error that reading it threw. */
export type Lookup =
  | { readonly found: true; readonly value: unknown }
  | { readonly found: false }
  | { readonly error: unknown };

/** Backoff between retries of a connection fault: doubling from `baseMs`, capped at `maxMs`. */
export interface RetryTiming {
  /** First delay, ms. Default 20. */
  baseMs?: number;
  /** Longest delay, ms. Default 5 000. */
  maxMs?: number;
}

/** Options of {@linkcode readKeys}. */
export interface ReadOptions {
  /** Stops retrying connection faults: the last one is thrown. */
  signal: AbortSignal;
  /** Most keys per `getMany` call. Default {@linkcode CHUNK}. */
  chunk?: number;
  /** Backoff of retries. */
  retry?: RetryTiming;
}

/**
 * Reads `keys` (distinct) from `store`, one `getMany` per `chunk` keys, in order.
 *
 * @returns A lookup per key.
 * @throws The store's RetriableError once `signal` is aborted while the store is unreachable.
 */
export async function readKeys(
  store: Store,
  keys: readonly string[],
  options: ReadOptions,
): Promise<Map<string, Lookup>> {
  const chunk = options.chunk ?? CHUNK;
  const out = new Map<string, Lookup>();
  for (let i = 0; i < keys.length; i += chunk) {
    const part = keys.slice(i, i + chunk);
    let values: unknown[];
    try {
      values = await getMany(store, part, options);
    } catch (error) {
      if (isRetriable(error)) throw error; // only when aborted
      if (part.length === 1) {
        out.set(part[0]!, { error });
        continue;
      }
      // Narrow it down: read the keys one by one.
      for (const key of part) {
        try {
          out.set(key, found((await getMany(store, [key], options))[0]));
        } catch (e) {
          if (isRetriable(e)) throw e;
          out.set(key, { error: e });
        }
      }
      continue;
    }
    for (let k = 0; k < part.length; k++) out.set(part[k]!, found(values[k]));
  }
  return out;
}

function found(value: unknown): Lookup {
  return value === undefined ? { found: false } : { found: true, value };
}

/** Whether a store error is a connection fault worth retrying (it crosses workers as a code). */
export function isRetriable(error: unknown): boolean {
  return (error as { code?: unknown } | null)?.code === "E_RETRIABLE";
}

/** `store.getMany(keys)`, retrying connection faults with backoff until `signal` is aborted. */
async function getMany(
  store: Store,
  keys: readonly string[],
  options: ReadOptions,
): Promise<unknown[]> {
  const { signal, retry = {} } = options;
  for (let attempt = 1;; attempt++) {
    try {
      const values = await store.getMany(keys);
      if (values.length !== keys.length) {
        const got = `${values.length} values for ${keys.length} keys`;
        throw new TypeError(`Cannot read from store: getMany returned ${got}`);
      }
      return values;
    } catch (error) {
      if (!isRetriable(error) || signal.aborted) throw error;
      await sleep(delay(attempt, retry), signal);
      if (signal.aborted) throw error;
    }
  }
}

/** Exponential backoff with jitter: between half and all of `baseMs × 2^attempt`, capped. */
function delay(attempt: number, { baseMs = 20, maxMs = 5_000 }: RetryTiming): number {
  const ceiling = Math.min(maxMs, baseMs * 2 ** Math.min(attempt, 20));
  return ceiling / 2 + Math.random() * ceiling / 2;
}

/** Waits `ms`, or less when `signal` is aborted. */
function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(timer);
      signal.removeEventListener("abort", done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal.addEventListener("abort", done, { once: true });
  });
}
