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
 * Where in `value` structured clone would give up, and on what; undefined when it clones as far as
 * a walk can tell. Plain objects, arrays, maps and sets are walked (a large config is not copied to
 * find out); built-ins that clone (dates, byte arrays…) are taken as they are; any other object is
 * tried on its own. A Proxy looks like what it wraps: only a real clone finds it.
 */
export function unsendable(value: unknown): Unsendable | undefined {
  const seen = new Set<object>();
  // The path is built on the way back, only for what was found.
  const walk = (v: unknown): Unsendable | undefined => {
    if (typeof v === "function") return { path: [], what: "a function" };
    if (typeof v === "symbol") return { path: [], what: "a symbol" };
    if (typeof v !== "object" || v === null || seen.has(v)) return undefined;
    seen.add(v);
    if (Array.isArray(v)) {
      for (let i = 0; i < v.length; i++) {
        const found = walk(v[i]);
        if (found) return under(i, found);
      }
      return undefined;
    }
    const proto = Object.getPrototypeOf(v);
    if (proto === Object.prototype || proto === null) {
      for (const key in v) {
        if (!Object.hasOwn(v, key)) continue;
        let item: unknown;
        try {
          item = (v as Record<string, unknown>)[key];
        } catch (error) {
          return { path: [key], what: `a getter that throws (${describe(error)})` };
        }
        const found = walk(item);
        if (found) return under(key, found);
      }
      return undefined;
    }
    if (v instanceof Map) {
      for (const [key, item] of v) {
        const found = walk(key) ?? walk(item);
        if (found) return under(String(key), found);
      }
      return undefined;
    }
    if (v instanceof Set) {
      for (const item of v) {
        const found = walk(item);
        if (found) return found;
      }
      return undefined;
    }
    if (
      v instanceof Date || v instanceof RegExp || ArrayBuffer.isView(v) ||
      v instanceof ArrayBuffer || v instanceof Boolean || v instanceof Number ||
      v instanceof String
    ) return undefined;
    try {
      structuredClone(v);
      return undefined;
    } catch {
      const name = (v as { constructor?: { name?: string } }).constructor?.name;
      return { path: [], what: name ? `a ${name}` : "an object structured clone refuses" };
    }
  };
  return walk(value);
}

/**
 * Where in `value` a real clone fails, and why; undefined when it clones. Slower than
 * {@linkcode unsendable} (it clones as it goes down), for when that one found nothing: a Proxy, a
 * getter that throws.
 */
export function cloneFailure(value: unknown): Unsendable | undefined {
  try {
    structuredClone(value);
    return undefined;
  } catch (error) {
    // The deepest part that fails on its own is the one to name.
    if (typeof value === "object" && value !== null) {
      let keys: string[] = [];
      try {
        keys = Object.keys(value);
      } catch {
        // a Proxy whose ownKeys trap throws: this is the part
      }
      for (const key of keys) {
        let child: unknown;
        try {
          child = (value as Record<string, unknown>)[key];
        } catch (e) {
          return { path: [key], what: `a getter that throws (${describe(e)})` };
        }
        const found = cloneFailure(child);
        if (found) return under(Array.isArray(value) ? Number(key) : key, found);
      }
    }
    return { path: [], what: describe(error) };
  }
}

function describe(error: unknown): string {
  return String((error as Error)?.message ?? error);
}

/** `found`, one level further down: under `key`. */
function under(key: PropertyKey, found: Unsendable): Unsendable {
  found.path.unshift(key);
  return found;
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
      for (const key of Object.keys(v)) {
        try {
          out[key] = copy((v as Record<string, unknown>)[key]);
        } catch (error) {
          out[key] = `[a getter that throws: ${describe(error)}]`;
        }
      }
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
