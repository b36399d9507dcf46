// Redis stream entries ↔ records. An entry with a `data` field is a record written by
// redisStreamSink (or any producer of JSON): `data` is the JSON value, `key` the record key and
// `headers` a JSON object of headers. Any other entry's value is its field map.
import type { StreamRecord } from "../../actors/record.ts";

/** One entry of a reply: its id and flat field list (`null` when trimmed from the stream). */
export type Entry = [id: string, fields: string[] | null];

/** A record read from an entry, or the entry as a record with why it cannot be read. */
export type Decoded =
  | { record: StreamRecord<unknown> }
  | { record: StreamRecord<unknown>; reason: Error };

/** The entries of an `XREADGROUP` reply for one stream (`[[stream, entries]]` or null). */
export function replyEntries(reply: unknown): Entry[] {
  if (!Array.isArray(reply)) return [];
  const entries: Entry[] = [];
  for (const perStream of reply) {
    const list = (perStream as [string, Entry[] | null])[1];
    if (Array.isArray(list)) entries.push(...list);
  }
  return entries;
}

/** Milliseconds part of an entry id (`<ms>-<seq>`). */
export function idTime(id: string): number {
  return Number(id.slice(0, id.indexOf("-")));
}

function fieldMap(fields: string[]): Record<string, string> {
  const map: Record<string, string> = {};
  for (let i = 0; i + 1 < fields.length; i += 2) map[fields[i]!] = fields[i + 1]!;
  return map;
}

function readError(stream: string, id: string, what: string, cause?: unknown): Error {
  const error = new Error(`Cannot read Redis stream "${stream}" entry ${id}: ${what}`, { cause });
  return Object.assign(error, { code: "E_REDIS_ENTRY" });
}

/** Decodes one entry into a record with `redis.stream` and `redis.id` headers. */
export function decodeEntry(stream: string, [id, fields]: Entry): Decoded {
  const coordinates = { "redis.stream": stream, "redis.id": id };
  const ts = idTime(id);
  if (fields === null) {
    const reason = readError(
      stream,
      id,
      "it was trimmed from the stream before it was acknowledged",
    );
    return { record: { value: null, ts, headers: coordinates }, reason };
  }
  const map = fieldMap(fields);
  if (map.data === undefined) return { record: { value: map, ts, headers: coordinates } };
  const key = map.key;
  try {
    const value: unknown = JSON.parse(map.data);
    const own = map.headers === undefined ? {} : JSON.parse(map.headers) as unknown;
    if (own === null || typeof own !== "object" || Array.isArray(own)) {
      throw new TypeError("the headers field is not a JSON object");
    }
    const headers: Record<string, string> = {};
    for (const [k, v] of Object.entries(own)) headers[k] = String(v);
    return {
      record: {
        ...(key === undefined ? {} : { key }),
        value,
        ts,
        headers: { ...headers, ...coordinates },
      },
    };
  } catch (error) {
    const what = error instanceof SyntaxError
      ? `the data field is not JSON (${error.message})`
      : String((error as Error).message);
    return {
      record: { ...(key === undefined ? {} : { key }), value: map, ts, headers: coordinates },
      reason: readError(stream, id, what, error),
    };
  }
}

/** The fields `redisStreamSink` writes for a record: `data` (JSON), `key`, `headers` (JSON). */
export function encodeRecord(record: StreamRecord<unknown>): string[] {
  const data = JSON.stringify(record.value);
  if (data === undefined) throw new TypeError(`the value is ${typeof record.value}, not JSON`);
  const fields = ["data", data];
  if (record.key !== undefined) fields.push("key", record.key);
  const headers = Object.entries(record.headers ?? {}).filter(([k]) => !k.startsWith("redis."));
  if (headers.length > 0) fields.push("headers", JSON.stringify(Object.fromEntries(headers)));
  return fields;
}
