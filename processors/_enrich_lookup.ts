// Batched store reads for `enrich`: the keys a batch missed in the cache are read with as few
// `getMany` calls as possible (one per CHUNK keys). A connection fault (a RetriableError, code
// E_RETRIABLE, which every store backend throws for one) is thrown as it is: the runtime retries
// the batch with backoff, holding it back as it does for a sink's write. Any other failure of a
// multi-key read is narrowed down key by key, so that one bad key fails only its own records.
import type { Store } from "../stores/store.ts";

/** Most keys per `getMany` call. */
export const CHUNK = 1_000;

/** What a read gave for one key: its value, no entry, or the error that reading it threw. */
export type Lookup =
  | { readonly found: true; readonly value: unknown }
  | { readonly found: false }
  | { readonly error: unknown };

/** Options of {@linkcode readKeys}. */
export interface ReadOptions {
  /** Most keys per `getMany` call. Default {@linkcode CHUNK}. */
  chunk?: number;
}

/**
 * Reads `keys` (distinct) from `store`, one `getMany` per `chunk` keys, in order.
 *
 * @returns A lookup per key.
 * @throws The store's RetriableError when it is unreachable.
 */
export async function readKeys(
  store: Store,
  keys: readonly string[],
  options: ReadOptions = {},
): Promise<Map<string, Lookup>> {
  const chunk = options.chunk ?? CHUNK;
  const out = new Map<string, Lookup>();
  for (let i = 0; i < keys.length; i += chunk) {
    const part = keys.slice(i, i + chunk);
    let values: unknown[];
    try {
      values = await getMany(store, part);
    } catch (error) {
      if (isRetriable(error)) throw error;
      if (part.length === 1) {
        out.set(part[0]!, { error });
        continue;
      }
      // Narrow it down: read the keys one by one.
      for (const key of part) {
        try {
          out.set(key, found((await getMany(store, [key]))[0]));
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

/** `store.getMany(keys)`, checked to answer one value per key. */
async function getMany(store: Store, keys: readonly string[]): Promise<unknown[]> {
  const values = await store.getMany(keys);
  if (values.length !== keys.length) {
    const got = `${values.length} values for ${keys.length} keys`;
    throw new TypeError(`Cannot read from store: getMany returned ${got}`);
  }
  return values;
}
