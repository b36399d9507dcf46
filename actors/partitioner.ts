/**
 * Key → partition hashing and partition → instance assignment with minimal movement.
 *
 * @module
 */

const encoder = new TextEncoder();

/**
 * Hashes a key into one of `partitions` logical partitions (FNV-1a, 32 bit, over UTF-8 bytes).
 * The same key always lands in the same partition, in every process and worker.
 *
 * @param key The record key.
 * @param partitions The number of partitions, a positive integer.
 * @returns The partition, `0 ≤ p < partitions`.
 * @throws {RangeError} When `partitions` is not a positive integer.
 *
 * @example
 * ```ts
 * import { partitionOf } from "@sluice/sluice";
 * import assert from "node:assert/strict";
 *
 * assert.equal(partitionOf("sku-1", 64), partitionOf("sku-1", 64));
 * assert.ok(partitionOf("sku-1", 64) < 64);
 * ```
 */
export function partitionOf(key: string, partitions: number): number {
  if (!Number.isInteger(partitions) || partitions < 1) {
    throw new RangeError(`Cannot hash key: partitions is ${partitions}, not a positive integer`);
  }
  let hash = 0x811c9dc5;
  let ascii = true;
  for (let i = 0; i < key.length; i++) {
    if (key.charCodeAt(i) > 0x7f) {
      ascii = false;
      break;
    }
  }
  if (ascii) {
    for (let i = 0; i < key.length; i++) {
      hash ^= key.charCodeAt(i);
      hash = Math.imul(hash, 0x01000193);
    }
  } else {
    for (const byte of encoder.encode(key)) {
      hash ^= byte;
      hash = Math.imul(hash, 0x01000193);
    }
  }
  return (hash >>> 0) % partitions;
}

/**
 * Assigns `partitions` partitions to `instances` instances, moving as few partitions as possible
 * from `previous` (an array: partition → instance). Every instance ends with ⌊P/N⌋ or ⌈P/N⌉
 * partitions; a partition moves only when its owner is gone or holds more than its share.
 *
 * @param partitions Number of partitions P.
 * @param instances Number of instances N, `1 ≤ N ≤ P`.
 * @param previous The previous assignment, if any.
 * @returns The new assignment: index = partition, value = instance.
 * @throws {RangeError} When N is not within 1..P.
 *
 * @example Scaling 2 → 3 moves only a third of the partitions
 * ```ts
 * import { assignPartitions } from "@sluice/sluice";
 * import assert from "node:assert/strict";
 *
 * const two = assignPartitions(64, 2);
 * const three = assignPartitions(64, 3, two);
 * const moved = three.filter((owner, p) => owner !== two[p]).length;
 * assert.ok(moved <= 22);
 * ```
 */
export function assignPartitions(
  partitions: number,
  instances: number,
  previous?: readonly number[],
): number[] {
  if (!Number.isInteger(instances) || instances < 1 || instances > partitions) {
    throw new RangeError(
      `Cannot assign partitions: parallelism is ${instances}, must be within 1..${partitions}`,
    );
  }
  const base = Math.floor(partitions / instances);
  const extra = partitions % instances;
  // Instances 0..extra-1 may hold base+1.
  const quota = (i: number) => base + (i < extra ? 1 : 0);
  const result = new Array<number>(partitions).fill(-1);
  const held = new Array<number>(instances).fill(0);
  if (previous && previous.length === partitions) {
    for (let p = 0; p < partitions; p++) {
      const owner = previous[p]!;
      if (owner >= 0 && owner < instances && held[owner]! < quota(owner)) {
        result[p] = owner;
        held[owner]!++;
      }
    }
  }
  let next = 0;
  for (let p = 0; p < partitions; p++) {
    if (result[p] !== -1) continue;
    while (held[next]! >= quota(next)) next++;
    result[p] = next;
    held[next]!++;
  }
  return result;
}
