// Record-side helpers of `enrich`: the lookup key of a record and the enriched value.
import type { StreamRecord } from "../actors/record.ts";
import { getField, isPlainObject } from "./_fields.ts";

/** A record's raw lookup key, from its value and the record. */
export type KeyFn = (value: unknown, record: StreamRecord<unknown>) => unknown;

/** How to get a record's lookup key: the record key, a field path of the value, or a function. */
export function keyFn(key: string | KeyFn | undefined): KeyFn {
  if (key === undefined) return (_, record) => record.key;
  if (typeof key === "function") return key;
  return (value) => getField(value, key);
}

/**
 * A raw key as a store key: strings as they are, finite numbers as decimal text (how `storeSink`
 * writes them). Anything else is a reason to dead-letter the record; `source` says where the key
 * came from, for that reason.
 */
export function storeKey(raw: unknown, source: string): { key: string } | { reason: string } {
  if (typeof raw === "string") return { key: raw };
  if (typeof raw === "number" && Number.isFinite(raw)) return { key: String(raw) };
  return {
    reason: `Cannot enrich record: its lookup key (${source}) is ${describe(raw)}, ` +
      "not a string or a finite number",
  };
}

/** A key for a message: quoted, and cut short when long. */
export function quoteKey(key: string): string {
  return JSON.stringify(key.length > 200 ? `${key.slice(0, 200)}…` : key);
}

/**
 * `value` with `found` at the field path `into` (dots nest: `"customer.profile"`), copied along
 * the path; the input is not changed. A value (or a step of the path) that is not a plain object
 * cannot take a field: the reason is returned instead.
 */
export function withField(
  value: unknown,
  into: string,
  found: unknown,
): { value: unknown } | { reason: string } {
  const parts = into.split(".");
  const put = (
    target: unknown,
    i: number,
    where: string,
  ): { value: unknown } | { reason: string } => {
    if (target !== undefined && !isPlainObject(target)) {
      return {
        reason: `Cannot enrich record: ${where} is ${describe(target)}, not an object ` +
          `(pass merge to combine it with the entry found)`,
      };
    }
    const part = parts[i]!;
    const base = (target ?? {}) as Record<string, unknown>;
    if (i === parts.length - 1) return { value: { ...base, [part]: found } };
    const inner = put(base[part], i + 1, `field "${parts.slice(0, i + 1).join(".")}"`);
    return "reason" in inner ? inner : { value: { ...base, [part]: inner.value } };
  };
  if (value === undefined) {
    return { reason: "Cannot enrich record: the value is undefined, not an object" };
  }
  return put(value, 0, "the value");
}

/** A short description of a bad value for a message. */
export function describe(v: unknown): string {
  if (v === null || v === undefined) return String(v);
  if (typeof v === "number") return String(v);
  if (Array.isArray(v)) return "an array";
  if (typeof v === "object") return isPlainObject(v) ? "an object" : `a ${v.constructor?.name}`;
  return `a ${typeof v}`;
}
