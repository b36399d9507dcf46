// How MongoStore keeps a value in its document `{ _id: key, value | bytes, expiresAt?, rev }`.
// Values BSON holds exactly (numbers, strings, booleans, null, Dates, dense arrays and plain
// objects of those with ordinary field names) are stored as they are in `value`: readable by other
// programs, and `$inc` works on numbers (-0 too, as a double). Anything else (Map, Set, typed
// arrays, bigint, undefined, a -0 inside an object, …), and values over the compression threshold
// that gzip makes shorter, are V8-serialised (gzip above the threshold) in `bytes`.
import { sizeBound } from "../kv/_codec.ts";
import { isGzip } from "../_compression.ts";
import { decodeBytes, encodeBytes } from "../_value_codec.ts";
import type { Mongodb } from "./_deps.ts";

/** A MongoStore document. */
export interface StoreDoc {
  _id: string;
  value?: unknown;
  bytes?: { buffer: Uint8Array; position: number };
  expiresAt?: Date;
  /** Changes at every write: read-modify-writes check it to detect concurrent writers. */
  rev?: number;
}

/** Largest native value (estimated bytes); BSON documents stop at 16 MiB. */
const NATIVE_LIMIT = 8 * 1024 * 1024;

/** Whether BSON holds `value` exactly. */
export function isNative(value: unknown, depth = 0): boolean {
  if (depth > 64) return false;
  switch (typeof value) {
    case "string":
      return value.isWellFormed();
    case "boolean":
      return true;
    case "number":
      return !Object.is(value, -0);
    case "object": {
      if (value === null) return true;
      if (value instanceof Date) return !Number.isNaN(value.getTime());
      if (Array.isArray(value)) {
        for (let i = 0; i < value.length; i++) {
          if (!(i in value) || !isNative(value[i], depth + 1)) return false;
        }
        return Object.keys(value).length === value.length;
      }
      if (Object.getPrototypeOf(value) !== Object.prototype) return false;
      for (const [k, v] of Object.entries(value)) {
        if (k.startsWith("$") || k.includes(".") || k.includes("\0") || !k.isWellFormed()) {
          return false;
        }
        if (!isNative(v, depth + 1)) return false;
      }
      return true;
    }
    default:
      return false;
  }
}

/**
 * Whether `mergeMany` can `$set` these fields into a stored value one by one: BSON holds them
 * exactly, and every name is a usable path segment (not empty, no `.` or leading `$`).
 */
export function isSettable(fields: Readonly<Record<string, unknown>>): boolean {
  return isNative(fields) && !Object.hasOwn(fields, "") &&
    sizeBound(fields, NATIVE_LIMIT) <= NATIVE_LIMIT;
}

/** A random revision number. */
export function newRev(): number {
  return Math.floor(Math.random() * Number.MAX_SAFE_INTEGER);
}

/** MongoDB's document size limit (`maxBsonObjectSize`). */
export const DOCUMENT_LIMIT = 16 * 1024 * 1024;

/** Room in a document for everything but the value bytes: field names, `rev`, `expiresAt`. */
const DOCUMENT_OVERHEAD = 256;

/**
 * The document (without `_id`) that stores the value of `key`. A value BSON holds exactly stays
 * native unless gzip (above `compressAbove`) makes it shorter: numbers stay numbers for `$inc`
 * whatever the threshold.
 *
 * @throws {DOMException} (DataCloneError) When the value is not structured-cloneable.
 * @throws {RangeError} When the value does not fit in a 16 MiB document.
 */
export async function encodeDoc(
  key: string,
  value: unknown,
  o: { driver: Mongodb; compressAbove: number | undefined; expiresAt: Date | undefined },
): Promise<Omit<StoreDoc, "_id">> {
  const rev = newRev();
  const expiry = o.expiresAt === undefined ? {} : { expiresAt: o.expiresAt };
  // The driver writes -0 as the integer 0; as a double it stays -0, and `$inc` works on it.
  if (Object.is(value, -0)) return { value: new o.driver.BSON.Double(-0), ...expiry, rev };
  const native = isNative(value) && sizeBound(value, NATIVE_LIMIT) <= NATIVE_LIMIT;
  const { compressAbove } = o;
  if (native && (compressAbove === undefined || sizeBound(value, compressAbove) <= compressAbove)) {
    return { value, ...expiry, rev };
  }
  const bytes = await encodeBytes(value, key, compressAbove);
  if (native && !isGzip(bytes)) return { value, ...expiry, rev }; // gzip did not pay
  const room = DOCUMENT_LIMIT - DOCUMENT_OVERHEAD - new TextEncoder().encode(key).byteLength;
  if (bytes.byteLength > room) {
    throw new RangeError(
      `Cannot set key ${JSON.stringify(key.slice(0, 80))}: its value takes ${bytes.byteLength} ` +
        `bytes${isGzip(bytes) ? " compressed" : ""}, more than fits in a MongoDB document ` +
        `(16 MiB)`,
    );
  }
  return { bytes: new o.driver.BSON.Binary(bytes), ...expiry, rev };
}

/** Whether a document has expired at `now` (ms). */
export function expired(doc: StoreDoc, now: number): boolean {
  return doc.expiresAt instanceof Date && doc.expiresAt.getTime() <= now;
}

/** The value a document stores. */
export async function decodeDoc(doc: StoreDoc): Promise<unknown> {
  if (doc.bytes === undefined) return doc.value;
  return await decodeBytes(doc.bytes.buffer.subarray(0, doc.bytes.position));
}
