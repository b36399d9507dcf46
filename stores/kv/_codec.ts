// Sizes and chunking for Deno KV: KV rejects values over 64 KiB and atomic operations over
// 1000 mutations, 100 checks, 80 KiB of keys or 800 KiB of keys + values. Small values are
// stored as they are; larger ones are V8-serialised and split into chunks behind a manifest.
import { deserialize } from "node:v8";
import { serializeValue } from "../_value_codec.ts";

/** Largest value stored inline (KV's limit is 65 536 bytes; V8 encodings differ by a few). */
export const INLINE_LIMIT = 60_000;
/** Bytes per chunk of a large value. */
export const CHUNK_SIZE = 60_000;
/** Most bytes of keys + values per atomic operation (KV: 819 200). */
export const BATCH_BYTES = 780_000;
/** Most bytes of keys per atomic operation (KV: 81 920). */
export const BATCH_KEY_BYTES = 78_000;
/** Most mutations per atomic operation (KV: 1000). */
export const BATCH_MUTATIONS = 1000;
/** Most checks per atomic operation (KV: 100). */
export const BATCH_CHECKS = 100;
/** Most encoded bytes of a user key's KV key (KV: 2048; chunk keys add an id and an index). */
export const KEY_LIMIT = 1980;

const MARK = "@sluice/chunked";

/** What is stored at a large value's key: where its chunks are. */
export interface Manifest {
  readonly [MARK]: 1;
  /** Chunk set id (chunks live under `[chunkRoot, ...namespace, key, id, i]`). */
  readonly id: string;
  /** Number of chunks. */
  readonly chunks: number;
  /** Serialised size in bytes. */
  readonly bytes: number;
}

/** Whether a stored value is a chunk manifest. */
export function isManifest(value: unknown): value is Manifest {
  return typeof value === "object" && value !== null && (value as Manifest)[MARK] === 1 &&
    typeof (value as Manifest).id === "string" && typeof (value as Manifest).chunks === "number";
}

/** A value ready to write: inline (with an upper bound of its size) or chunked. */
export type Prepared =
  | { readonly inline: true; readonly value: unknown; readonly bytes: number }
  | { readonly inline: false; readonly manifest: Manifest; readonly parts: Uint8Array[] };

/**
 * Decides how to store the value of `key`. A cheap upper bound of its V8 size settles most
 * values; only those near or over the limit, and those it cannot bound (which may not be
 * structured-cloneable), are serialised to measure them exactly.
 *
 * @throws {DOMException} (DataCloneError) When the value is not structured-cloneable (the
 *   message names the key).
 */
export function prepare(value: unknown, key: string): Prepared {
  const bound = sizeBound(value, INLINE_LIMIT);
  if (bound <= INLINE_LIMIT) return { inline: true, value, bytes: bound };
  const bytes = serializeValue(value, key);
  if (bytes.byteLength <= INLINE_LIMIT) return { inline: true, value, bytes: bytes.byteLength };
  const parts: Uint8Array[] = [];
  for (let at = 0; at < bytes.byteLength; at += CHUNK_SIZE) {
    parts.push(bytes.subarray(at, at + CHUNK_SIZE));
  }
  const manifest: Manifest = {
    [MARK]: 1,
    id: crypto.randomUUID(),
    chunks: parts.length,
    bytes: bytes.byteLength,
  };
  return { inline: false, manifest, parts };
}

/** Reassembles the chunks of a large value. */
export function assemble(parts: Uint8Array[], bytes: number): unknown {
  const all = new Uint8Array(bytes);
  let at = 0;
  for (const part of parts) {
    all.set(part, at);
    at += part.byteLength;
  }
  return deserialize(all);
}

/** Encoded size of a KV key (tuple encoding: a tag, the UTF-8 bytes with NULs escaped, a NUL). */
export function keyBytes(parts: readonly (string | number)[]): number {
  let n = 0;
  for (const part of parts) n += typeof part === "string" ? utf8Bytes(part) + 2 : 9;
  return n;
}

function utf8Bytes(s: string): number {
  let n = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c === 0) n += 2;
    else if (c < 0x80) n += 1;
    else if (c < 0x800) n += 2;
    else if (c >= 0xd800 && c <= 0xdbff && i + 1 < s.length) {
      n += 4;
      i++;
    } else n += 3;
  }
  return n;
}

/**
 * An upper bound of the V8-serialised size of `value`, or `Infinity` once it passes `budget` or
 * meets something it cannot bound (boxed primitives, errors, functions, symbols, objects of other
 * classes — a WeakMap cannot be cloned at all): the caller then measures exactly. Strings count 2 bytes per UTF-16 unit (V8 may store them two-byte).
 */
export function sizeBound(value: unknown, budget: number): number {
  const seen = new Set<object>();
  let total = 0;
  const walk = (v: unknown): boolean => {
    switch (typeof v) {
      case "string":
        total += 2 * v.length + 6;
        break;
      case "number":
        total += 10;
        break;
      case "boolean":
      case "undefined":
        total += 1;
        break;
      case "bigint":
        total += Math.ceil(v.toString(16).length / 16) * 8 + 12;
        break;
      case "object": {
        if (v === null) {
          total += 1;
          break;
        }
        if (seen.has(v)) {
          total += 6;
          break;
        }
        seen.add(v);
        if (ArrayBuffer.isView(v) || v instanceof ArrayBuffer) {
          total += v.byteLength + 24;
        } else if (Array.isArray(v)) {
          total += 12;
          for (let i = 0; i < v.length; i++) if (!walk(v[i])) return false;
        } else if (v instanceof Date) {
          total += 10;
        } else if (v instanceof RegExp) {
          total += 2 * v.source.length + 16;
        } else if (v instanceof Map) {
          total += 12;
          for (const [k, x] of v) if (!walk(k) || !walk(x)) return false;
        } else if (v instanceof Set) {
          total += 12;
          for (const x of v) if (!walk(x)) return false;
        } else if (
          v instanceof Error || v instanceof Number || v instanceof String ||
          v instanceof Boolean
        ) {
          return false;
        } else {
          const proto = Object.getPrototypeOf(v);
          if (proto !== Object.prototype && proto !== null) return false;
          total += 12;
          for (const k of Object.keys(v)) {
            total += 2 * k.length + 6;
            if (!walk((v as Record<string, unknown>)[k])) return false;
          }
        }
        break;
      }
      default:
        return false;
    }
    return total <= budget;
  };
  return walk(value) ? total : Infinity;
}
