// Folding one batch of records into one write per key for the store sink: each record's key and
// contribution, combined in record order; records that cannot be written are set aside with the
// reason, to be dead-lettered once the batch is written.
import type { StreamRecord } from "../actors/record.ts";
import { isPlainObject } from "./_args.ts";

/** How a record changes the entry at its key. */
export type Mode = "set" | "merge" | "increment";

/** A record's key from its value and the record. */
export type KeyFn = (value: unknown, record: StreamRecord<unknown>) => unknown;

/** One write per key, and the records set aside. */
export interface Folded {
  readonly entries: Map<string, unknown>;
  readonly bad: [StreamRecord<unknown>, string][];
}

/** Folds a batch. */
export function fold(
  records: readonly StreamRecord<unknown>[],
  o: { keyOf: KeyFn; mode: Mode; field: string | undefined },
): Folded {
  const { keyOf, mode, field } = o;
  const entries = new Map<string, unknown>();
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
      } else entries.set(k, part);
    } else if (mode === "merge") {
      if (!isPlainObject(part)) {
        bad.push([
          record,
          `Cannot merge record: ${what(field)} is ${describe(part)}, not an object`,
        ]);
      } else entries.set(k, { ...(entries.get(k) as object | undefined), ...part });
    } else if (typeof part !== "number" || !Number.isFinite(part)) {
      bad.push([record, `Cannot increment by record: ${what(field)} is ${describe(part)}`]);
    } else entries.set(k, ((entries.get(k) as number | undefined) ?? 0) + part);
  }
  return { entries, bad };
}

/** The value at a dotted field path (`"customer.id"`), or `undefined`. */
export function getField(value: unknown, path: string): unknown {
  let current = value;
  for (const part of path.split(".")) {
    if (typeof current !== "object" || current === null) return undefined;
    current = (current as Record<string, unknown>)[part];
  }
  return current;
}

function what(field: string | undefined): string {
  return field === undefined ? "the value" : `field "${field}"`;
}

/** A short description of a bad value for a message. */
export function describe(v: unknown): string {
  if (v === null || v === undefined) return String(v);
  if (typeof v === "number") return String(v);
  return Array.isArray(v) ? "an array" : `a ${typeof v}`;
}
