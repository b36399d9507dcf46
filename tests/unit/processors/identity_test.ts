import assert from "node:assert/strict";
import { isDeepStrictEqual } from "node:util";
import { identity } from "../../../processors/_identity.ts";

class Point {
  constructor(public x: number, public y: number) {}
}

const bytes = (...b: number[]) => new Uint8Array(b);

// Values that must all have different identities (each differs from every other in one detail).
const distinct: [string, unknown][] = [
  ["undefined", undefined],
  ["null", null],
  ["true", true],
  ["false", false],
  ["0", 0],
  ["1", 1],
  ["-1", -1],
  ["0.1", 0.1],
  ["1e21", 1e21],
  ["NaN", NaN],
  ["Infinity", Infinity],
  ["-Infinity", -Infinity],
  ["1n", 1n],
  ["-1n", -1n],
  ['"1"', "1"],
  ['""', ""],
  ['"NaN"', "NaN"],
  ['"null"', "null"],
  ['"u"', "u"],
  ['"s"', "s"],
  ['"d1"', "d1"],
  ['"[d1]"', "[d1]"],
  ["new Number(1)", new Number(1)],
  ['new String("1")', new String("1")],
  ["new Boolean(false)", new Boolean(false)],
  ["[]", []],
  ["[undefined]", [undefined]],
  ["[null]", [null]],
  ["[ , ]", new Array(1)],
  ["[1, 2]", [1, 2]],
  ["[[1], 2]", [[1], 2]],
  ["[[1, 2]]", [[1, 2]]],
  ['["a,b"]', ["a,b"]],
  ['["a", "b"]', ["a", "b"]],
  ["{}", {}],
  ["{ a: undefined }", { a: undefined }],
  ["{ a: null }", { a: null }],
  ["{ a: NaN }", { a: NaN }],
  ["{ a: Infinity }", { a: Infinity }],
  ["{ a: -Infinity }", { a: -Infinity }],
  ['{ a: "x" }', { a: "x" }],
  ['{ "a\\":1": 1 }', { 'a":1': 1 }],
  ["{ a: 1 }", { a: 1 }],
  ["{ b: 1 }", { b: 1 }],
  ["{ a: { b: 1 } }", { a: { b: 1 } }],
  ['{ "a.b": 1 }', { "a.b": 1 }],
  ['{ "0": 1 }', { 0: 1 }],
  ["Date(0)", new Date(0)],
  ["Date(1)", new Date(1)],
  ["Invalid Date", new Date(NaN)],
  ["/a/", /a/],
  ["/a/g", /a/g],
  ["Error(a)", new Error("a")],
  ["TypeError(a)", new TypeError("a")],
  ["Uint8Array [1, 2]", bytes(1, 2)],
  ["Uint8Array [1, 2, 0]", bytes(1, 2, 0)],
  ["Int8Array [1, 2]", new Int8Array([1, 2])],
  ["ArrayBuffer [1, 2]", bytes(1, 2).buffer],
  ["Float64Array [0]", new Float64Array([0])],
  ["Float64Array [-0]", new Float64Array([-0])],
  ["Map {}", new Map()],
  ["Map { 1 => 2 }", new Map([[1, 2]])],
  ['Map { "1" => 2 }', new Map([["1", 2]])],
  ["Set {}", new Set()],
  ["Set { 1 }", new Set([1])],
  ["Set { 1, 2 }", new Set([1, 2])],
];

Deno.test("identity() gives different identities to values that differ in any detail", () => {
  const seen = new Map<string, string>();
  for (const [name, value] of distinct) {
    const id = identity(value);
    assert.equal(seen.get(id), undefined, `${name} collides with ${seen.get(id)}: ${id}`);
    seen.set(id, name);
  }
});

Deno.test("identity() tells NaN, Infinity, -Infinity, null and undefined apart inside values", () => {
  const inner = [NaN, Infinity, -Infinity, null, undefined];
  for (
    const wrap of [(v: unknown) => ({ p: v }), (v: unknown) => [v], (v: unknown) => ({ a: [v] })]
  ) {
    const ids = new Set(inner.map((v) => identity(wrap(v))));
    assert.equal(ids.size, inner.length);
  }
});

Deno.test("identity() is the same for equal values: key order, Map and Set order, NaN, -0", () => {
  const same: [unknown, unknown][] = [
    [{ a: 1, b: { c: 2, d: 3 } }, { b: { d: 3, c: 2 }, a: 1 }],
    [NaN, Number("x")],
    [{ p: NaN }, { p: 0 / 0 }],
    [-0, 0],
    [[-0], [0]],
    [
      new Map<unknown, unknown>([["b", 1], [2, { y: 1, x: 2 }]]),
      new Map<unknown, unknown>([[2, { x: 2, y: 1 }], ["b", 1]]),
    ],
    [new Set(["b", "a", 1]), new Set([1, "a", "b"])],
    [new Date(5), new Date(5)],
    [bytes(1, 2), bytes(0, 1, 2).subarray(1)],
    [new Point(1, 2), { y: 2, x: 1 }],
    [Object.assign(Object.create(null), { a: 1 }), { a: 1 }],
    ["a", "a"],
    [10n ** 30n, 10n ** 30n],
  ];
  for (const [a, b] of same) assert.equal(identity(a), identity(b), `${identity(a)}`);
});

Deno.test("identity() of a value equals that of its structured clone", () => {
  for (const [name, value] of distinct) {
    assert.equal(identity(structuredClone(value)), identity(value), name);
  }
  const instance = new Point(3, 4);
  assert.equal(identity(structuredClone(instance)), identity(instance));
});

Deno.test("identity() keeps string identities in string order", () => {
  const words = ["b", "a", "ab", "", "B", "é"];
  const byId = [...words].sort((x, y) => (identity(x) < identity(y) ? -1 : 1));
  assert.deepEqual(byId, [...words].sort());
});

Deno.test("identity() shares sub-values without calling them cycles, and rejects real cycles", () => {
  const shared = { n: 1 };
  assert.equal(identity([shared, shared]), identity([{ n: 1 }, { n: 1 }]));
  const cyclic: { self?: unknown } = {};
  cyclic.self = cyclic;
  assert.throws(() => identity(cyclic), {
    name: "TypeError",
    message: "Cannot identify value: it contains a cycle",
  });
  const loop: unknown[] = [];
  loop.push(new Map([[1, loop]]));
  assert.throws(() => identity(loop), /contains a cycle/);
});

Deno.test("identity() rejects functions and symbols, which are not structured-cloneable", () => {
  assert.throws(() => identity({ f: () => 1 }), {
    name: "TypeError",
    message: "Cannot identify value: a function is not structured-cloneable",
  });
  assert.throws(() => identity([Symbol("s")]), /a symbol is not structured-cloneable/);
});

Deno.test("identity() encodes a 100 kB string and a 100 kB byte array without collisions", () => {
  const big = "k".repeat(100_000);
  assert.notEqual(identity(big), identity(big + "k"));
  assert.notEqual(identity({ s: big }), identity({ s: big + "k" }));
  const a = new Uint8Array(100_000), b = new Uint8Array(100_000);
  b[99_999] = 1;
  assert.notEqual(identity(a), identity(b));
});

// A small seeded generator (mulberry32) of nested values over a tiny alphabet, so that equal and
// nearly equal values come up often; strings hold the grammar's own delimiters.
function generator(seed: number): (depth: number) => unknown {
  let s = seed;
  const next = () => {
    s = (s + 0x6d2b79f5) | 0;
    let t = Math.imul(s ^ (s >>> 15), 1 | s);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const pick = <T>(items: readonly T[]): T => items[Math.floor(next() * items.length)]!;
  const leaves = [
    0,
    1,
    NaN,
    Infinity,
    -Infinity,
    null,
    undefined,
    true,
    1n,
    "",
    "1",
    '"',
    ",",
    ":]",
    "d1",
    "\\",
  ];
  const value = (depth: number): unknown => {
    const kind = depth <= 0 ? 0 : Math.floor(next() * 4);
    const size = Math.floor(next() * 3);
    if (kind === 1) return Array.from({ length: size }, () => value(depth - 1));
    if (kind === 2) {
      return Object.fromEntries(
        Array.from({ length: size }, () => [pick(["a", "b", '"', ""]), value(depth - 1)]),
      );
    }
    if (kind === 3) {
      return new Map(Array.from({ length: size }, () => [pick(leaves), value(depth - 1)]));
    }
    return pick(leaves);
  };
  return value;
}

Deno.test("identity() of random nested values is equal exactly when the values are deep-equal", () => {
  const value = generator(42);
  const values = Array.from({ length: 400 }, () => value(3));
  let equalPairs = 0;
  for (const a of values) {
    for (const b of values) {
      const equal = isDeepStrictEqual(a, b);
      if (equal) equalPairs++;
      assert.equal(identity(a) === identity(b), equal, `${identity(a)} vs ${identity(b)}`);
    }
  }
  assert.ok(equalPairs > values.length, "the generator should produce some equal values");
});
