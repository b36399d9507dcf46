/**
 * Per-key state, kept per partition so it can move between instances.
 *
 * @module
 */
import { partitionOf } from "./partitioner.ts";

/**
 * A map from record key to state, sharded by partition. Get it in a hook with `ctx.keyed()`; the
 * runtime snapshots the partitions an instance gives up and restores them where they move.
 *
 * @example
 * ```ts
 * import { KeyedState } from "@sluice/sluice";
 * import assert from "node:assert/strict";
 *
 * const sums = new KeyedState<number>(64);
 * sums.set("a", (sums.get("a") ?? 0) + 5);
 * assert.equal(sums.get("a"), 5);
 * assert.equal(sums.size, 1);
 * ```
 */
export class KeyedState<V> {
  readonly #partitions: number;
  readonly #shards = new Map<number, Map<string, V>>();
  /** Partitions touched since the last {@linkcode KeyedState.takeDirty}: values may be mutated in place after `get`. */
  readonly #dirty = new Set<number>();

  /**
   * Creates empty state.
   *
   * @param partitions The pipeline's partition count.
   */
  constructor(partitions: number) {
    this.#partitions = partitions;
  }

  #shard(key: string, create: boolean): Map<string, V> | undefined {
    const p = partitionOf(key, this.#partitions);
    this.#dirty.add(p);
    let shard = this.#shards.get(p);
    if (!shard && create) {
      shard = new Map();
      this.#shards.set(p, shard);
    }
    return shard;
  }

  /** The state of `key`, or undefined. */
  get(key: string): V | undefined {
    return this.#shard(key, false)?.get(key);
  }

  /** Whether `key` has state. */
  has(key: string): boolean {
    return this.#shard(key, false)?.has(key) ?? false;
  }

  /** Sets the state of `key`. */
  set(key: string, value: V): this {
    this.#shard(key, true)!.set(key, value);
    return this;
  }

  /** Forgets `key`. */
  delete(key: string): boolean {
    return this.#shard(key, false)?.delete(key) ?? false;
  }

  /** Number of keys held. */
  get size(): number {
    let n = 0;
    for (const shard of this.#shards.values()) n += shard.size;
    return n;
  }

  /**
   * Every (key, state) pair, partition by partition. A read: scanning does not make partitions
   * part of the next checkpoint, so after changing a value in place here, `set` it (or `delete`
   * it). Values taken with `get` may be changed in place: their partition is checkpointed.
   */
  *entries(): IterableIterator<[string, V]> {
    for (const shard of this.#shards.values()) yield* shard.entries();
  }

  /** Partitions read or written since the last call (whose state may have changed), and resets the set. */
  takeDirty(): number[] {
    const dirty = [...this.#dirty];
    this.#dirty.clear();
    return dirty;
  }

  /**
   * Copies out the given partitions' state (all held when omitted), as `[partition, entries]`
   * pairs. Partitions asked for by name are included even when empty, so that a checkpoint
   * overwrites what an earlier one stored for them.
   */
  snapshot(partitions?: Iterable<number>): [number, [string, V][]][] {
    const out: [number, [string, V][]][] = [];
    if (!partitions) {
      for (const [p, shard] of this.#shards) {
        if (shard.size > 0) out.push([p, [...shard.entries()]]);
      }
      return out;
    }
    for (const p of partitions) out.push([p, [...(this.#shards.get(p)?.entries() ?? [])]]);
    return out;
  }

  /** Adds partitions' state taken from another instance's `snapshot`. */
  restore(snapshot: [number, [string, V][]][]): void {
    for (const [p, entries] of snapshot) {
      const shard = this.#shards.get(p) ?? new Map<string, V>();
      for (const [k, v] of entries) shard.set(k, v);
      this.#shards.set(p, shard);
    }
  }

  /** Drops partitions this instance no longer owns. */
  drop(partitions: Iterable<number>): void {
    for (const p of partitions) {
      this.#shards.delete(p);
      this.#dirty.delete(p);
    }
  }
}
