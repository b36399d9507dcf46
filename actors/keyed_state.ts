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
  readonly #shards = new Map<number, Shard<V>>();
  /** Each key held → its state and partition's shard: one lookup per access, no hashing after. */
  readonly #home = new Map<string, Slot<V>>();

  /**
   * Creates empty state.
   *
   * @param partitions The pipeline's partition count.
   */
  constructor(partitions: number) {
    this.#partitions = partitions;
  }

  #shardOf(p: number): Shard<V> {
    let shard = this.#shards.get(p);
    if (!shard) {
      shard = { p, map: new Map(), dirty: false };
      this.#shards.set(p, shard);
    }
    return shard;
  }

  /** The state of `key`, or undefined. Its partition is checkpointed: it may be changed in place. */
  get(key: string): V | undefined {
    const slot = this.#home.get(key);
    if (slot === undefined) return undefined;
    slot.shard.dirty = true;
    return slot.value;
  }

  /** Whether `key` has state. */
  has(key: string): boolean {
    return this.#home.has(key);
  }

  /** Sets the state of `key`. */
  set(key: string, value: V): this {
    const slot = this.#home.get(key);
    if (slot === undefined) {
      const shard = this.#shardOf(partitionOf(key, this.#partitions));
      shard.dirty = true;
      this.#add(shard, key, value);
    } else {
      slot.shard.dirty = true;
      slot.value = value;
    }
    return this;
  }

  /** Puts a key that is not held yet (or held in another shard) into `shard`. */
  #add(shard: Shard<V>, key: string, value: V): void {
    const slot = { shard, value };
    shard.map.set(key, slot);
    this.#home.set(key, slot);
  }

  /** Forgets `key`. */
  delete(key: string): boolean {
    const slot = this.#home.get(key);
    if (slot === undefined) return false;
    slot.shard.dirty = true;
    this.#home.delete(key);
    return slot.shard.map.delete(key);
  }

  /** Number of keys held. */
  get size(): number {
    return this.#home.size;
  }

  /**
   * Every (key, state) pair, partition by partition. A read: scanning does not make partitions
   * part of the next checkpoint, so after changing a value in place here, `set` it (or `delete`
   * it). Values taken with `get` may be changed in place: their partition is checkpointed.
   */
  *entries(): IterableIterator<[string, V]> {
    for (const shard of this.#shards.values()) {
      for (const [key, slot] of shard.map) yield [key, slot.value];
    }
  }

  /** Partitions written, or read with `get`, since the last call (their state may have changed); resets them. */
  takeDirty(): number[] {
    const dirty: number[] = [];
    for (const shard of this.#shards.values()) {
      if (!shard.dirty) continue;
      shard.dirty = false;
      dirty.push(shard.p);
    }
    return dirty;
  }

  /**
   * Marks partitions dirty again: a checkpoint that took them was aborted, so the next one must
   * take them. Partitions not held here any more are skipped.
   */
  markDirty(partitions: Iterable<number>): void {
    for (const p of partitions) {
      const shard = this.#shards.get(p);
      if (shard) shard.dirty = true;
    }
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
        if (shard.map.size > 0) out.push([p, pairs(shard)]);
      }
      return out;
    }
    for (const p of partitions) {
      const shard = this.#shards.get(p);
      out.push([p, shard ? pairs(shard) : []]);
    }
    return out;
  }

  /** Adds partitions' state taken from another instance's `snapshot`. */
  restore(snapshot: [number, [string, V][]][]): void {
    for (const [p, entries] of snapshot) {
      const shard = this.#shardOf(p);
      for (const [k, v] of entries) {
        const slot = this.#home.get(k);
        if (slot?.shard === shard) {
          slot.value = v;
          continue;
        }
        // Held in another partition (a snapshot taken under another partition count): the key
        // moves, and the partition it leaves is checkpointed without it.
        if (slot) {
          slot.shard.map.delete(k);
          slot.shard.dirty = true;
        }
        this.#add(shard, k, v);
      }
    }
  }

  /** Drops partitions this instance no longer owns. */
  drop(partitions: Iterable<number>): void {
    for (const p of partitions) {
      const shard = this.#shards.get(p);
      if (!shard) continue;
      for (const k of shard.map.keys()) this.#home.delete(k);
      this.#shards.delete(p);
    }
  }
}

/** The keys of one partition; `dirty` once changed (or read) since the last checkpoint. */
interface Shard<V> {
  p: number;
  map: Map<string, Slot<V>>;
  dirty: boolean;
}

/** One key's state and the shard that holds it. */
interface Slot<V> {
  shard: Shard<V>;
  value: V;
}

/** A shard's (key, state) pairs, copied out. */
function pairs<V>(shard: Shard<V>): [string, V][] {
  const out: [string, V][] = [];
  for (const [key, slot] of shard.map) out.push([key, slot.value]);
  return out;
}
