// The "hash" layout of RedisStore: a record (plain object) is one Redis hash, one field per
// property, each property JSON-encoded so other programs can read fields and HINCRBYFLOAT works
// on numeric ones. Values must therefore be JSON-compatible (a Date reads back as its ISO text).
import { isPlainObject } from "../_args.ts";

/**
 * The HSET arguments `[field, json, …]` of a record.
 *
 * @throws {TypeError} When `value` is not a plain object.
 */
export function hashFields(key: string, value: unknown): string[] {
  if (!isPlainObject(value)) {
    throw new TypeError(
      `Cannot set key "${key}": a RedisStore with layout "hash" holds plain objects, got ${
        value === null ? "null" : Array.isArray(value) ? "an array" : typeof value
      }`,
    );
  }
  const out: string[] = [];
  for (const [field, v] of Object.entries(value)) {
    const json = JSON.stringify(v);
    if (json !== undefined) out.push(field, json);
  }
  return out;
}

/** The record of an HGETALL reply; `undefined` for an empty reply (absent key). */
export function hashRecord(reply: Record<string, string>): Record<string, unknown> | undefined {
  const fields = Object.keys(reply);
  if (fields.length === 0) return undefined;
  const out: Record<string, unknown> = {};
  for (const field of fields) {
    const text = reply[field]!;
    try {
      out[field] = JSON.parse(text);
    } catch {
      out[field] = text; // written by another program as plain text
    }
  }
  return out;
}
