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

/**
 * Checks a key argument: a string that is well-formed UTF-16. A lone surrogate has no UTF-8
 * encoding: Redis, MongoDB and Deno KV would store it as U+FFFD, under another key.
 */
export function checkKey(key: unknown, where: string): string {
  if (typeof key !== "string") {
    throw new TypeError(
      `Cannot ${where}: key is ${key === null ? "null" : typeof key}, not a string`,
    );
  }
  if (!key.isWellFormed()) {
    throw new TypeError(
      `Cannot ${where}: key ${JSON.stringify(key.slice(0, 40))} holds a lone surrogate ` +
        "(it is not well-formed UTF-16)",
    );
  }
  return key;
}

/**
 * The error for a value that is not structured-cloneable (a function, a symbol, a WeakMap, …):
 * what `structuredClone` throws, a `DOMException` named `DataCloneError`, but naming the key and
 * short (V8's own message quotes a function's whole source), with V8's error as its cause.
 */
export function notCloneable(key: string, cause: unknown): DOMException {
  const detail = String((cause as { message?: unknown } | null)?.message ?? cause)
    .replace(/\s+/g, " ");
  return new DOMException(
    `Cannot set key ${JSON.stringify(key.slice(0, 80))}: the value is not structured-cloneable (${
      detail.length > 80 ? `${detail.slice(0, 80)}…` : detail
    })`,
    // The options form of the constructor (WebIDL): Deno's types know only the name form.
    { name: "DataCloneError", cause } as unknown as string,
  );
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

/** The entries of a `setMany` by checked key; for a key given twice, the last value wins. */
export function lastValues(entries: Iterable<readonly [string, unknown]>): Map<string, unknown> {
  const last = new Map<string, unknown>();
  for (const [key, value] of entries) last.set(checkKey(key, "set entry"), value);
  return last;
}

/** The amounts of an `incrementMany` by checked key; amounts for one key are added up. */
export function sumAmounts(entries: Iterable<readonly [string, number]>): Map<string, number> {
  const sums = new Map<string, number>();
  for (const [key, by] of entries) {
    sums.set(checkKey(key, "increment"), (sums.get(key) ?? 0) + checkAmount(by, key));
  }
  return sums;
}

/** The fields of a `mergeMany` by checked key; fields for one key are merged in order. */
export function foldFields(
  entries: Iterable<readonly [string, Readonly<Record<string, unknown>>]>,
): Map<string, Record<string, unknown>> {
  const folded = new Map<string, Record<string, unknown>>();
  for (const [key, fields] of entries) {
    if (!isPlainObject(fields)) {
      throw new TypeError(`Cannot merge into key "${key}": the fields are not a plain object`);
    }
    folded.set(checkKey(key, "merge"), { ...folded.get(key), ...fields });
  }
  return folded;
}
