// How a batch of records crosses a channel: packed column by column, then structured-cloned.
//
// Structured clone writes every property name of every object and makes every string afresh: for
// records of one shape most of its work repeats itself (~1.2 µs for a generator event, sender and
// receiver together). A packed batch holds each field once: numbers in a Float64Array (copied as
// bytes), strings as indices into the batch's distinct strings, plain objects that share one key
// sequence as columns of their fields. What does not fit (a Date, an array, a class instance, a
// key some objects lack) stays a plain array and is cloned as before, so the receiver gets what
// structured clone would have given it. An object packed as columns twice in a batch (shared, or a
// cycle) leaves the whole batch unpacked; objects with a key that Object.prototype also has stay as
// they are. What differs from structured clone: an object is packed when its prototype is
// Object.prototype, by its own enumerable keys, so a Proxy crosses as a plain object (structured
// clone refuses it) and a built-in re-parented to Object.prototype (a Map, say) loses its contents;
// an object packed as columns that also occurs inside a value left as it is arrives as two copies;
// and a getter may be read twice when packing gives up below the object that has it.

/** A packed column of values, as it goes into `postMessage`. */
export type Column =
  /** Values as they are: structured clone copies them. */
  | unknown[]
  /** Numbers only. */
  | Float64Array
  /** Strings only: the n-th is `d[i[n]]`. */
  | { d: string[]; i: Uint8Array | Uint16Array }
  /** `n` plain objects, all with the keys `k` in that order: `c[j]` holds key `k[j]`'s values. */
  | { k: string[]; c: Column[]; n: number };

/** Objects nested deeper than this go as they are. Level 0 is the record itself. */
const MAX_DEPTH = 3;

/** Strings are dictionary-coded while at most this share of a column is distinct. */
const DISTINCT_SHARE = 0.5;

/** Batches a column with too many distinct strings goes without a dictionary before a new try. */
const PLAIN_FOR = 64;

/**
 * Packs batches for one channel. It remembers which string columns had too many distinct values
 * to be worth a dictionary, so it does not try again on every batch.
 */
export class Packer {
  /** Column path → batches left before its strings get a dictionary again. */
  readonly #plain = new Map<string, number>();

  /** Objects packed so far in the batch under way: one met twice stops the packing. */
  readonly #seen = new Set<object>();

  /**
   * Packs `records` (one batch). Anything unexpected (a getter that throws, an object met twice)
   * leaves the batch as it is: `postMessage` then does what it did without packing.
   */
  pack(records: unknown[]): Column {
    if (records.length === 0 || inheritsEnumerable()) return records;
    for (const [path, left] of this.#plain) {
      if (left <= 1) this.#plain.delete(path);
      else this.#plain.set(path, left - 1);
    }
    try {
      return this.#column(records, "", 0);
    } catch {
      return records;
    } finally {
      this.#seen.clear();
    }
  }

  #column(values: unknown[], path: string, depth: number): Column {
    const first = values[0];
    if (typeof first === "number") return numbers(values);
    if (typeof first === "string") {
      if (this.#plain.has(path)) return values;
      const coded = strings(values);
      if (coded === values) this.#plain.set(path, PLAIN_FOR);
      return coded;
    }
    if (depth < MAX_DEPTH && isPlain(first)) return this.#objects(values, path, depth);
    return values;
  }

  #objects(values: unknown[], path: string, depth: number): Column {
    const keys: string[] = [];
    for (const k in values[0] as object) {
      // Set on the other side, a key the prototype has would not make an own property: it would
      // set the prototype (`__proto__`), or throw if the prototype holds it read-only.
      if (k === "__proto__" || k in Object.prototype) return values;
      keys.push(k);
    }
    const n = values.length;
    const width = keys.length;
    // Shapes first, values after: a column left as it is has had no getter read. Structured clone
    // sends an object met twice (shared, or a cycle) once, where columns would copy it.
    const seen = this.#seen;
    for (let at = 0; at < n; at++) {
      const value = values[at];
      if (!isPlain(value)) return values;
      let j = 0;
      for (const k in value) {
        if (j === width || k !== keys[j]) return values;
        j++;
      }
      if (j !== width) return values;
      // One hash lookup: an object already there leaves the size as it was.
      const size = seen.size;
      if (seen.add(value).size === size) {
        throw new RangeError("Cannot pack: an object occurs twice");
      }
    }
    const fields = readerOf(keys)(values, n);
    const c: Column[] = [];
    for (let j = 0; j < width; j++) {
      c.push(this.#column(fields[j]!, `${path}.${keys[j]}`, depth + 1));
    }
    return { k: keys, c, n };
  }
}

/** The values a column was packed from: fresh copies, as structured clone makes them. */
export function unpack(col: Column): unknown[] {
  if (Array.isArray(col)) return col;
  if (col instanceof Float64Array) return Array.from(col);
  return expand(col);
}

/** Whether `Object.prototype` has gained enumerable keys: `for…in` would see them, a clone not. */
function inheritsEnumerable(): boolean {
  for (const _ in {}) return true;
  return false;
}

function isPlain(x: unknown): x is Record<string, unknown> {
  return typeof x === "object" && x !== null && Object.getPrototypeOf(x) === Object.prototype;
}

function numbers(values: unknown[]): Column {
  const out = new Float64Array(values.length);
  for (let i = 0; i < values.length; i++) {
    const x = values[i];
    if (typeof x !== "number") return values;
    out[i] = x;
  }
  return out;
}

function strings(values: unknown[]): Column {
  const n = values.length;
  const most = Math.max(1, Math.floor(n * DISTINCT_SHARE));
  if (most > 65_536) return values;
  const seen = new Map<string, number>();
  const d: string[] = [];
  const i = most <= 256 ? new Uint8Array(n) : new Uint16Array(n);
  for (let at = 0; at < n; at++) {
    const s = values[at];
    if (typeof s !== "string") return values;
    let index = seen.get(s);
    if (index === undefined) {
      if (d.length === most) return values;
      index = d.length;
      seen.set(s, index);
      d.push(s);
    }
    i[at] = index;
  }
  return { d, i };
}

function expand(col: Exclude<Column, unknown[] | Float64Array>): unknown[] {
  if ("d" in col) {
    const { d, i } = col;
    const out: unknown[] = [];
    for (let at = 0; at < i.length; at++) out.push(d[i[at]!]);
    return out;
  }
  const { k: keys, n } = col;
  const width = keys.length;
  const fields = col.c.map((c) => Array.isArray(c) || c instanceof Float64Array ? c : expand(c));
  const out: unknown[] = [];
  // Here Object.prototype may have gained a key since the sender checked (a setter, say): such a
  // key is defined, as structured clone does, not assigned.
  if (keys.some((k) => k in Object.prototype)) {
    for (let at = 0; at < n; at++) {
      const o: Record<string, unknown> = {};
      for (let j = 0; j < width; j++) {
        const spec = {
          value: fields[j]![at],
          writable: true,
          enumerable: true,
          configurable: true,
        };
        Object.defineProperty(o, keys[j]!, spec);
      }
      out.push(o);
    }
    return out;
  }
  return builderOf(keys)(fields, n);
}

/** Reads the fields of `n` objects of one key sequence into columns. */
type Reader = (values: unknown[], n: number) => unknown[][];

/** Readers by key sequence, as {@linkcode builders}. */
const readers = new Map<string, Reader>();

/**
 * A reader for objects with `keys`, in that order: a load per field by its name, where reading
 * key by key (`o[k]`) goes through a generic load per field.
 */
function readerOf(keys: string[]): Reader {
  const id = JSON.stringify(keys);
  let read = readers.get(id);
  if (read) return read;
  const columns = keys.map((_, j) => `const c${j} = new Array(n);`).join("\n");
  const loads = keys.map((k, j) => `c${j}[at] = v[${JSON.stringify(k)}];`).join(" ");
  read = new Function(
    "values",
    "n",
    `${columns}\nfor (let at = 0; at < n; at++) { const v = values[at]; ${loads} }\n` +
      `return [${keys.map((_, j) => `c${j}`).join(", ")}];`,
  ) as Reader;
  if (readers.size >= MAX_BUILDERS) readers.clear();
  readers.set(id, read);
  return read;
}

/** Builds `n` objects of one key sequence from its columns. */
type Builder = (fields: ArrayLike<unknown>[], n: number) => unknown[];

/** Builders by key sequence: the few shapes a pipeline's channels carry, made once each. */
const builders = new Map<string, Builder>();

/** At most this many shapes are kept: a stream of ever new keys does not grow the cache. */
const MAX_BUILDERS = 256;

/**
 * A builder for objects with `keys`, in that order: one object literal per record, so every
 * object gets the same hidden class at once, where assigning key by key (`o[k] = v`) goes through
 * a generic store per field. The keys are quoted with JSON.stringify, so any key is safe; none is
 * `__proto__` nor another key of Object.prototype (the caller checks).
 */
function builderOf(keys: string[]): Builder {
  const id = JSON.stringify(keys);
  let build = builders.get(id);
  if (build) return build;
  const columns = keys.map((_, j) => `const c${j} = fields[${j}];`).join("\n");
  const literal = keys.map((k, j) => `${JSON.stringify(k)}: c${j}[at]`).join(", ");
  build = new Function(
    "fields",
    "n",
    `${columns}\nconst out = new Array(n);\n` +
      `for (let at = 0; at < n; at++) out[at] = { ${literal} };\nreturn out;`,
  ) as Builder;
  if (builders.size >= MAX_BUILDERS) builders.clear();
  builders.set(id, build);
  return build;
}
