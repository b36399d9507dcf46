// How Redis and MongoDB stores turn values into bytes and back: V8 serialisation (the structured
// clone format, so Maps, Sets, Dates, typed arrays, bigints and cycles round-trip), gzip above a
// threshold. Three self-describing forms are read back:
// - ff …      a V8-serialised value
// - 1f 8b …   the same, gzip-compressed
// - anything else: text, as other programs (and Redis INCRBYFLOAT) write it — a decimal number
//   reads back as a number, any other text as the string itself.
import { deserialize, serialize } from "node:v8";
import { notCloneable } from "./_args.ts";
import { gunzip, gzip, isGzip } from "./_compression.ts";

const V8_TAG = 0xff;

/**
 * V8-serialises the value of `key`.
 *
 * @throws {DOMException} (DataCloneError) When the value is not structured-cloneable (the
 *   message names the key).
 */
export function serializeValue(value: unknown, key: string): Uint8Array {
  try {
    return serialize(value);
  } catch (e) {
    throw notCloneable(key, e);
  }
}

/**
 * Encodes the value of `key` as V8 bytes, gzip-compressed when they are longer than
 * `compressAbove` and gzip makes them shorter.
 *
 * @throws {DOMException} (DataCloneError) When the value is not structured-cloneable.
 */
export async function encodeBytes(
  value: unknown,
  key: string,
  compressAbove?: number,
): Promise<Uint8Array> {
  const bytes = serializeValue(value, key);
  if (compressAbove !== undefined && bytes.byteLength > compressAbove) {
    const packed = await gzip(bytes);
    if (packed.byteLength < bytes.byteLength) return packed;
  }
  return bytes;
}

/** Whether `bytes` must be decoded asynchronously (gzip). */
export function isCompressed(bytes: Uint8Array): boolean {
  return isGzip(bytes);
}

/** Decodes what {@linkcode encodeBytes} (or another program writing text) stored. */
export async function decodeBytes(bytes: Uint8Array): Promise<unknown> {
  if (isGzip(bytes)) return deserialize(await gunzip(bytes));
  return decodePlain(bytes);
}

/** Decodes uncompressed bytes: V8, or text (a decimal number, else the string). */
export function decodePlain(bytes: Uint8Array): unknown {
  if (bytes.byteLength > 0 && bytes[0] === V8_TAG) return deserialize(bytes);
  const text = new TextDecoder().decode(bytes);
  return NUMBER.test(text) ? Number(text) : text;
}

const NUMBER = /^-?(\d+\.?\d*|\.\d+)(e[-+]?\d+)?$/i;

/**
 * A finite number as text that parses back to the same number (`-0` as `"-0"`, which `String`
 * would make `"0"`; non-finite numbers are not: they are V8-encoded), or `undefined` for every
 * other value.
 */
export function numberText(value: unknown): string | undefined {
  if (typeof value !== "number" || !Number.isFinite(value)) return undefined;
  return Object.is(value, -0) ? "-0" : String(value);
}
