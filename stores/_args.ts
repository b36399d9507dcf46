// Argument checks shared by the stores, and one key order for all of them: UTF-8 byte order
// (what Deno KV, Redis and MongoDB compare), not JavaScript's UTF-16 order.

const encoder = new TextEncoder();

/** Compares two strings by their UTF-8 bytes. */
export function compareKeys(a: string, b: string): number {
  if (a === b) return 0;
  const x = encoder.encode(a);
  const y = encoder.encode(b);
  const n = Math.min(x.length, y.length);
  for (let i = 0; i < n; i++) if (x[i] !== y[i]) return x[i]! - y[i]!;
  return x.length - y.length;
}

/** Checks a key argument. */
export function checkKey(key: unknown, where: string): string {
  if (typeof key !== "string") {
    throw new TypeError(
      `Cannot ${where}: key is ${key === null ? "null" : typeof key}, not a string`,
    );
  }
  return key;
}

/** Checks a `ttlMs` option: `undefined` or a positive finite number (rounded up to whole ms). */
export function checkTtl(ttlMs: unknown, where: string): number | undefined {
  if (ttlMs === undefined) return undefined;
  if (typeof ttlMs !== "number" || !Number.isFinite(ttlMs) || ttlMs <= 0) {
    throw new RangeError(`Cannot ${where}: ttlMs must be a positive number, got ${String(ttlMs)}`);
  }
  return Math.ceil(ttlMs);
}

/** Checks an increment amount. */
export function checkAmount(by: unknown, key: string): number {
  if (typeof by !== "number" || !Number.isFinite(by)) {
    throw new TypeError(`Cannot increment key "${key}": by is not a finite number`);
  }
  return by;
}

/** Whether `value` is a plain object (what `mergeMany` merges). */
export function isPlainObject(value: unknown): value is Record<string, unknown> {
  if (typeof value !== "object" || value === null || Array.isArray(value)) return false;
  const proto = Object.getPrototypeOf(value);
  return proto === Object.prototype || proto === null;
}
