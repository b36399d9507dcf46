// What a KvStore last wrote with read-check-write, with the versionstamp it was committed with:
// the next read-check-write of the same key can skip its read. It is only an optimisation, never
// trusted: every write built on it checks the versionstamp, and a key changed by another writer
// (or expired) fails the check, is forgotten and read again.

interface Known {
  value: unknown;
  versionstamp: string;
}

/** A bounded map (oldest forgotten first) of key → last committed stored value + versionstamp. */
export class KnownEntries {
  readonly #max: number;
  readonly #map = new Map<string, Known>();

  constructor(max: number) {
    this.#max = max;
  }

  /** Records what was committed at `key` (a copy, so that callers cannot change it). */
  remember(key: string, value: unknown, versionstamp: string): void {
    this.#map.delete(key);
    this.#map.set(key, { value: copy(value), versionstamp });
    if (this.#map.size > this.#max) this.#map.delete(this.#map.keys().next().value!);
  }

  /** Drops `key`: it was written without a check, deleted, or its check failed. */
  forget(key: string): void {
    this.#map.delete(key);
  }

  /** Entries of `keys`, from memory where known, the rest from `read` (in one call). */
  async entries(
    keys: readonly string[],
    read: (keys: string[]) => Promise<Deno.KvEntryMaybe<unknown>[]>,
  ): Promise<Deno.KvEntryMaybe<unknown>[]> {
    const out: (Deno.KvEntryMaybe<unknown> | undefined)[] = keys.map((k) => {
      const known = this.#map.get(k);
      return known && { key: [], value: copy(known.value), versionstamp: known.versionstamp };
    });
    const missing = keys.filter((_, i) => out[i] === undefined);
    if (missing.length === 0) return out as Deno.KvEntryMaybe<unknown>[];
    const fresh = await read(missing);
    let next = 0;
    return out.map((e) => e ?? fresh[next++]!);
  }
}

function copy(value: unknown): unknown {
  return typeof value === "object" && value !== null ? structuredClone(value) : value;
}
