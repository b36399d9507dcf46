// Per-key turns of one KvStore: its own read-modify-writes of a key run one after another, so that
// they never fail each other's versionstamp checks (each lost check costs a round, and a key that
// loses 32 rounds fails the write: 40 concurrent `increment`s of one key did). Writers in other
// stores, workers and processes are still caught by the checks.

/** Locks on keys, taken in sorted order so that two callers never wait for each other. */
export class KeyLocks {
  readonly #tails = new Map<string, Promise<void>>();

  /**
   * Waits until no earlier caller holds any of `keys`.
   *
   * @returns The function that releases them.
   */
  async acquire(keys: readonly string[]): Promise<() => void> {
    const releases: (() => void)[] = [];
    try {
      for (const key of [...new Set(keys)].sort()) {
        const previous = this.#tails.get(key);
        let release!: () => void;
        const mine = new Promise<void>((resolve) => release = resolve);
        this.#tails.set(key, mine);
        releases.push(() => {
          release();
          if (this.#tails.get(key) === mine) this.#tails.delete(key);
        });
        if (previous) await previous;
      }
    } catch (e) {
      for (const r of releases) r();
      throw e;
    }
    return () => {
      for (const r of releases) r();
    };
  }
}
