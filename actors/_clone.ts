// What structured clone refuses (functions, symbols, some class instances), found without
// copying, and a copy that it takes.

/** Where in a value structured clone gives up, and on what. */
export interface Unsendable {
  /** Path from the value's root, as keys and indices. */
  path: PropertyKey[];
  /** What is there: "a function", "a symbol", "a URL"… */
  what: string;
}

/**
 * Where in `value` structured clone would give up, and on what; undefined when it clones. Plain
 * objects and arrays are walked (a large config is not copied to find out); anything else is
 * tried on its own.
 */
export function unsendable(value: unknown): Unsendable | undefined {
  const seen = new Set<object>();
  const walk = (
    v: unknown,
    path: PropertyKey[],
  ): Unsendable | undefined => {
    if (typeof v === "function") return { path, what: "a function" };
    if (typeof v === "symbol") return { path, what: "a symbol" };
    if (typeof v !== "object" || v === null || seen.has(v)) return undefined;
    seen.add(v);
    const proto = Object.getPrototypeOf(v);
    if (Array.isArray(v)) {
      for (let i = 0; i < v.length; i++) {
        const found = walk(v[i], [...path, i]);
        if (found) return found;
      }
      return undefined;
    }
    if (proto === Object.prototype || proto === null) {
      for (const key of Object.keys(v)) {
        const found = walk((v as Record<string, unknown>)[key], [...path, key]);
        if (found) return found;
      }
      return undefined;
    }
    try {
      structuredClone(v);
      return undefined;
    } catch {
      const name = (v as { constructor?: { name?: string } }).constructor?.name;
      return { path, what: name ? `a ${name}` : "an object structured clone refuses" };
    }
  };
  return walk(value, []);
}

/**
 * A copy of `value` that structured clone takes: what it refuses becomes a string saying what it
 * was (`"[function fn]"`, `"Symbol(x)"`, `"[URL]"`). Plain objects and arrays are copied; anything
 * else that clones is kept as it is.
 */
export function sendable(value: unknown): unknown {
  const copies = new Map<object, unknown>();
  const copy = (v: unknown): unknown => {
    if (typeof v === "function") return `[function ${v.name || "anonymous"}]`;
    if (typeof v === "symbol") return v.toString();
    if (typeof v !== "object" || v === null) return v;
    if (copies.has(v)) return copies.get(v);
    const proto = Object.getPrototypeOf(v);
    if (Array.isArray(v)) {
      const out: unknown[] = [];
      copies.set(v, out);
      for (const item of v) out.push(copy(item));
      return out;
    }
    if (proto === Object.prototype || proto === null) {
      const out: Record<string, unknown> = {};
      copies.set(v, out);
      for (const key of Object.keys(v)) out[key] = copy((v as Record<string, unknown>)[key]);
      return out;
    }
    try {
      structuredClone(v);
      return v;
    } catch {
      return `[${(v as { constructor?: { name?: string } }).constructor?.name ?? "object"}]`;
    }
  };
  return copy(value);
}

/** Whether `error` is structured clone refusing a value. */
export function isCloneError(error: unknown): boolean {
  return (error as { name?: unknown } | null)?.name === "DataCloneError";
}
