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

/** The group a record's state lives under: its key, or `""` for records without one. */
export function groupKey(record: StreamRecord<unknown>): string {
  return record.key ?? "";
}

/** A stable string identity for a value (object keys sorted), for distinct counts and dedupe. */
export function identity(value: unknown): string {
  if (value === undefined) return "u";
  if (typeof value === "number" || typeof value === "bigint") return `n${String(value)}`;
  if (typeof value === "string") return `s${value}`;
  return `j${JSON.stringify(value, sortedKeys)}`;
}

function sortedKeys(_key: string, value: unknown): unknown {
  if (!isPlainObject(value)) return value;
  const out: Record<string, unknown> = {};
  for (const k of Object.keys(value).sort()) out[k] = value[k];
  return out;
}

/** A record's event time, checked: a non-finite `ts` fails the record (it has no place in time). */
export function eventTime(record: StreamRecord<unknown>, what: string): number {
  if (typeof record.ts !== "number" || !Number.isFinite(record.ts)) {
    throw new TypeError(`Cannot ${what} record: ts is ${String(record.ts)}, not a finite number`);
  }
  return record.ts;
}
