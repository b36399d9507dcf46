// Batches are packed column by column before they cross a channel (actors/_wire.ts). Whatever a
// batch holds, the receiver must get what structured clone alone would have given it.
import assert from "node:assert/strict";
import { type Column, Packer, unpack } from "../../actors/_wire.ts";
import { assertSame, cross } from "./_wire_check.ts";

/** A small seeded PRNG, so a failure names a batch that can be made again. */
function random(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = Math.imul(s ^ (s >>> 15), s | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

class Point {
  constructor(public x: number, public y: number) {}
}

/** A class whose prototype has an enumerable key: `for…in` sees it, structured clone does not. */
class Tagged {}
(Tagged.prototype as unknown as Record<string, unknown>).tag = "inherited";

/** Every kind of value a record may carry, picked at random. */
function anyValue(rnd: () => number, depth: number): unknown {
  const pick = Math.floor(rnd() * (depth > 3 ? 14 : 20));
  switch (pick) {
    case 0:
      return Math.floor(rnd() * 1000);
    case 1:
      return [-0, NaN, Infinity, -Infinity, 0.1, 2 ** 53][Math.floor(rnd() * 6)];
    case 2:
      return `s${Math.floor(rnd() * 5)}`;
    case 3:
      return ["", "é", "\u{1F600}", "\ud800", "a\u0000b"][Math.floor(rnd() * 5)];
    case 4:
      return rnd() < 0.5;
    case 5:
      return null;
    case 6:
      return undefined;
    case 7:
      return BigInt(Math.floor(rnd() * 100));
    case 8:
      return new Date(Math.floor(rnd() * 1e12));
    case 9:
      return new Date(NaN);
    case 10:
      return new Uint8Array([1, 2, Math.floor(rnd() * 255)]);
    case 11:
      return new Map([["a", Math.floor(rnd() * 5)]]);
    case 12:
      return new Set([1, "x"]);
    case 13:
      return new Point(rnd(), 2);
    case 14:
      return [1, "two", { three: 3 }];
    case 15:
      return Object.assign(Object.create(null), { bare: 1 });
    case 16:
      return JSON.parse('{"__proto__": {"p": 1}, "after": 2}');
    case 17:
      return { 2: "two", 1: "one", b: "b", a: "a" };
    case 18:
      return {};
    default:
      return { x: anyValue(rnd, depth + 1), y: anyValue(rnd, depth + 1) };
  }
}

/** An object that looks like `{ x, y }` to `for…in` but is not one, or not quite. */
function lookalike(rnd: () => number, x: unknown, y: unknown): unknown {
  switch (Math.floor(rnd() * 9)) {
    case 0:
      return new Point(x as number, y as number);
    case 7:
      return Object.assign(new Date(5), { x, y });
    case 8:
      return Object.assign(new Tagged(), { x, y });
    case 1:
      return Object.assign(Object.create(null), { x, y });
    case 2:
      return { y, x };
    case 3:
      return { x };
    case 4:
      return { x, y, z: 1 };
    case 5:
      return Object.assign(JSON.parse('{"__proto__": {"x": 0}}'), { x, y });
    default:
      return [x, y];
  }
}

/** A batch: mostly records of one shape (what packing is for), with every kind of deviation. */
function batch(rnd: () => number, n: number): unknown[] {
  const mode = Math.floor(rnd() * 3);
  const out: unknown[] = [];
  for (let i = 0; i < n; i++) {
    const x = anyValue(rnd, 2), y = i;
    const value = mode === 0
      ? { id: i, sku: `sku-${Math.floor(rnd() * 5)}`, price: rnd() * 100, ok: rnd() < 0.5 }
      : mode === 1
      ? { id: i, p: rnd() < 0.1 ? lookalike(rnd, x, y) : { x, y } }
      : { id: i, v: anyValue(rnd, 0), ...(rnd() < 0.2 ? { extra: anyValue(rnd, 1) } : {}) };
    const record: Record<string, unknown> = { key: `k${i % 3}`, value, ts: 1000 + i };
    if (rnd() < (mode === 2 ? 0.3 : 0.02)) record.headers = { line: String(i) };
    if (rnd() < 0.05) delete record.key;
    out.push(rnd() < 0.03 ? anyValue(rnd, 0) : record);
  }
  return out;
}

Deno.test("Packer.pack() then unpack() gives what structured clone gives, for any batch", () => {
  for (let seed = 1; seed <= 400; seed++) {
    const rnd = random(seed);
    const records = batch(rnd, 1 + Math.floor(rnd() * 40));
    const expected = structuredClone(records);
    try {
      assertSame(cross(records), expected);
    } catch (e) {
      throw new Error(`seed ${seed}: ${(e as Error).message}`);
    }
  }
});

// Deno deletes the `__proto__` accessor, so no assignment could set a prototype here; the packer
// still leaves such objects to structured clone, for hosts that keep it.
Deno.test("Packer.pack() keeps an own key named __proto__ an own key", () => {
  const records = [0, 1, 2].map((i) => ({
    value: JSON.parse(`{"__proto__": {"polluting": ${i}}, "n": ${i}}`),
    ts: i,
  }));
  const got = cross(records) as { value: Record<string, unknown> }[];
  assertSame(got, structuredClone(records));
  assert.equal(Object.getPrototypeOf(got[0]!.value), Object.prototype);
  assert.equal(({} as Record<string, unknown>).polluting, undefined);
});

Deno.test("Packer.pack() packs records of one shape column by column", () => {
  const records = Array.from({ length: 100 }, (_, i) => ({
    key: `sku-${i % 4}`,
    value: { sku: `sku-${i % 4}`, n: i, nested: { flag: i % 2 === 0, name: `user-${i}` } },
    ts: 1700000000000 + i,
  }));
  const packed = new Packer().pack(records) as Exclude<Column, unknown[] | Float64Array>;
  assert.ok("k" in packed, "the records are columns");
  assert.deepEqual(packed.k, ["key", "value", "ts"]);
  const [keyCol, valueCol, tsCol] = packed.c;
  assert.ok(keyCol && "d" in keyCol, "repeated strings are dictionary-coded");
  assert.deepEqual(keyCol.d, ["sku-0", "sku-1", "sku-2", "sku-3"]);
  assert.ok(tsCol instanceof Float64Array, "numbers are a Float64Array");
  assert.ok(valueCol && "k" in valueCol, "values of one shape are columns too");
  const names = (valueCol.c[2] as { c: Column[] }).c[1];
  assert.ok(Array.isArray(names), "strings that are all distinct go as they are");
  assertSame(unpack(structuredClone(packed)), records);
});

Deno.test("Packer.pack() leaves a batch as it is when reading it throws", () => {
  const records = [
    { value: 1, ts: 1 },
    {
      get value(): number {
        throw new Error("no");
      },
      ts: 2,
    },
  ];
  const packed = new Packer().pack(records);
  assert.equal(packed, records);
});

Deno.test("Packer.pack() leaves a batch as it is while Object.prototype has enumerable keys", () => {
  const records = [{ value: { a: 1 }, ts: 1 }, { value: { a: 2 }, ts: 2 }];
  const proto = Object.prototype as Record<string, unknown>;
  proto.polluted = true;
  try {
    assert.equal(new Packer().pack(records), records);
  } finally {
    delete proto.polluted;
  }
  assert.notEqual(new Packer().pack(records), records);
});

Deno.test("Packer.pack() stops dictionary-coding a column of distinct strings, then tries again", () => {
  const packer = new Packer();
  const distinct = (from: number) =>
    Array.from({ length: 64 }, (_, i) => ({ value: `line ${from + i}`, ts: i }));
  const repeated = Array.from({ length: 64 }, (_, i) => ({ value: `v${i % 2}`, ts: i }));
  const valuesOf = (c: Column) => (c as { c: Column[] }).c[0]!;
  assert.ok(Array.isArray(valuesOf(packer.pack(distinct(0)))));
  // Remembered for a while: even repeated strings go as they are...
  assert.ok(Array.isArray(valuesOf(packer.pack(repeated))));
  for (let i = 0; i < 64; i++) packer.pack(distinct(i * 64));
  // ...until the column gets a new try.
  for (let i = 0; i < 64; i++) packer.pack([{ value: 1, ts: 1 }]);
  assert.ok("d" in (valuesOf(packer.pack(repeated)) as object));
  assertSame(cross(repeated, packer), repeated);
});

Deno.test("unpack() defines a key that Object.prototype gained on the receiving side", () => {
  const records = [{ value: { sku: "a", n: 1 }, ts: 1 }, { value: { sku: "b", n: 2 }, ts: 2 }];
  const packed = structuredClone(new Packer().pack(records));
  // A stage module on the receiving side adds a setter: assigning would call it, not keep the key.
  let called = 0;
  Object.defineProperty(Object.prototype, "sku", {
    set(_v: unknown) {
      called++;
    },
    configurable: true,
  });
  try {
    const got = unpack(packed) as typeof records;
    assert.equal(called, 0);
    assert.deepEqual(got.map((r) => Object.getOwnPropertyDescriptor(r.value, "sku")?.value), [
      "a",
      "b",
    ]);
  } finally {
    delete (Object.prototype as Record<string, unknown>).sku;
  }
});
