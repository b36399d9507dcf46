// Small helpers over record values shared by the processors: field paths, keys, plain objects.
import type { StreamRecord } from "../actors/record.ts";

/** Whether `value` is a plain object (`{}` literal or null prototype), not an array or instance. */
export function isPlainObject(value: unknown): value is Record<string, unknown> {
  if (typeof value !== "object" || value === null || Array.isArray(value)) return false;
  const proto = Object.getPrototypeOf(value);
  return proto === Object.prototype || proto === null;
}

/**
 * Reads a field path (`"price"`, `"customer.id"`) from a value. Returns `undefined` when any step
 * is missing or not an object. A path that exists verbatim as a key (`"a.b"`) wins over nesting.
 */
export function getField(value: unknown, path: string): unknown {
  if (typeof value !== "object" || value === null) return undefined;
  const direct = (value as Record<string, unknown>)[path];
  if (direct !== undefined || !path.includes(".")) return direct;
  let current: unknown = value;
  for (const part of path.split(".")) {
    if (typeof current !== "object" || current === null) return undefined;
    current = (current as Record<string, unknown>)[part];
  }
  return current;
}

// State keys of keyed state (`ctx.keyed()`). KeyedState files an entry under partitionOf(state
// key), and the runtime routes a record to the instance owning partitionOf(record.key ?? ""), so
// a state key must hash (FNV-1a, 32 bit) exactly like `record.key ?? ""` for rescaling to move the
// state along with its records. Both strings below are fixed points of FNV-1a: hashing them from
// the offset basis returns the offset basis, so PRESENT + key hashes like key at every partition
// count, and ABSENT hashes like "". ABSENT does not start with PRESENT, so no key collides with
// it (Kafka tells an empty key from a null key, and so do we); and it sorts before PRESENT, so
// ordering state keys orders records without a key first, then keys in order.
const PRESENT = "key:QFVedG:";
const ABSENT = "absent:nMydDE";

/**
 * The keyed-state key a record's state lives under: distinct for "no key" and for every key
 * (`""` included), and in the same partition as `record.key ?? ""`.
 */
export function groupKey(record: StreamRecord<unknown>): string {
  return record.key === undefined ? ABSENT : PRESENT + record.key;
}

/**
 * The record key a {@linkcode groupKey} state key stands for (`undefined`: no key). A state key
 * restored from a checkpoint written before this encoding (the bare key, `""` for none) reads as
 * that key, so its windows and batches still come out, under their old key.
 */
export function keyOfGroup(group: string): string | undefined {
  if (group.startsWith(PRESENT)) return group.slice(PRESENT.length);
  return group === ABSENT || group === "" ? undefined : group;
}

/** A record's event time, checked: a non-finite `ts` fails the record (it has no place in time). */
export function eventTime(record: StreamRecord<unknown>, what: string): number {
  if (typeof record.ts !== "number" || !Number.isFinite(record.ts)) {
    throw new TypeError(`Cannot ${what} record: ts is ${String(record.ts)}, not a finite number`);
  }
  return record.ts;
}
