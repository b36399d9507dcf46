// Review of actors/_wire.ts: `unpack(structuredClone(packer.pack(batch)))` must give what
// `structuredClone(batch)` gives, but for the differences the module's header names. The first
// tests pin edge cases; the later ones were written failing (a shared object split into copies, a
// cycle unrolled, a shared lookup sent once per record, a read-only prototype key, a getter read
// twice) and pass since the packer leaves such batches to structured clone.
import assert from "node:assert/strict";
import { serialize } from "node:v8";
import { type Column, Packer, unpack } from "../../actors/_wire.ts";
import { assertSame, cross } from "./_wire_check.ts";

// --- Guarantees that hold -------------------------------------------------------------------

Deno.test("Packer.pack() round-trips a batch over 65 536 records: Uint16 dictionary, -0, NaN, undefined holes", () => {
  const n = 70_000;
  const records = Array.from({ length: n }, (_, i) => ({
    value: {
      user: `u${i % 30_000}`,
      maybe: i % 3 === 0 ? undefined : `m${i % 7}`,
      f: i % 2 ? -0 : NaN,
      big: i % 5 === 0 ? 2 ** 53 + 2 : -Infinity,
    },
    ts: i,
  }));
  const packed = new Packer().pack(records);
  const user = ((packed as { c: Column[] }).c[0] as { c: Column[] }).c[0] as {
    d: string[];
    i: Uint16Array;
  };
  assert.ok(user.i instanceof Uint16Array, "30 000 distinct of 70 000: a Uint16 dictionary");
  assert.equal(user.d.length, 30_000);
  assertSame(unpack(structuredClone(packed)), structuredClone(records));
});

Deno.test("Packer.pack() leaves a string column of more than 65 536 distinct values as it is", () => {
  const n = 140_000;
  const records = Array.from({ length: n }, (_, i) => ({ value: `s${i % 66_000}`, ts: i }));
  const packed = new Packer().pack(records) as { c: Column[] };
  assert.ok(Array.isArray(packed.c[0]), "no dictionary that a Uint16 index could not address");
  const got = cross(records) as { value: string }[];
  assert.equal(got[65_999]!.value, "s65999");
  assert.equal(got[66_000]!.value, "s0");
  assert.equal(got[139_999]!.value, `s${139_999 % 66_000}`);
});

Deno.test("Packer.pack() gives what structured clone gives for sparse batches, integer-like keys, empty, frozen and deep objects", () => {
  // deno-lint-ignore no-sparse-arrays
  const sparse = [{ value: 1, ts: 1 }, , { value: 3, ts: 3 }];
  const deep = { a: { b: { c: { d: { e: 1 } } } } };
  const batches: unknown[][] = [
    sparse,
    // deno-lint-ignore no-sparse-arrays
    [1, , 3],
    ["a", undefined, "a"],
    [{}, {}, {}],
    [{ value: {}, ts: 1 }, { value: {}, ts: 2 }],
    [{ 10: "ten", 2: "two", b: 1, a: 2, "4294967295": "x", "-1": "m" }, {
      "-1": "m",
      a: 2,
      b: 1,
      "4294967295": "y",
      2: "two",
      10: "ten",
    }],
    [Object.freeze({ value: Object.freeze({ x: 1 }), ts: 1 }), { value: { x: 2 }, ts: 2 }],
    [{ value: deep, ts: 1 }, { value: structuredClone(deep), ts: 2 }],
    [{ value: -0, ts: NaN }, { value: NaN, ts: -0 }],
  ];
  for (const [at, batch] of batches.entries()) {
    const got = cross(batch);
    try {
      assertSame(got, structuredClone(batch));
      assert.equal(got.length, batch.length);
      assert.deepEqual(Object.keys(got), Object.keys(structuredClone(batch)), "holes stay holes");
    } catch (e) {
      throw new Error(`batch ${at}: ${(e as Error).message}`);
    }
  }
});

Deno.test("Packer.pack() leaves a record with a cycle deeper than its depth limit to end without recursing forever", () => {
  const node: Record<string, unknown> = { n: 1 };
  node.self = node;
  const got = cross([{ value: node, ts: 1 }, { value: node, ts: 2 }]) as {
    value: { n: number; self: unknown };
  }[];
  assert.equal(got.length, 2);
  assert.equal(got[0]!.value.n, 1);
});

// --- Shared objects, cycles, prototype keys, getters ------------------------------------------

Deno.test("unpack() keeps an object that two fields of one record share one object, as structured clone does", () => {
  const shared = { sku: "a1", price: 5 };
  const batch = [{ value: { line: shared, first: shared }, ts: 1 }];
  const expected = structuredClone(batch);
  assert.equal(expected[0]!.value.line, expected[0]!.value.first);
  const got = cross(batch) as typeof batch;
  assert.equal(got[0]!.value.line, got[0]!.value.first, "one record's shared object was split");
});

Deno.test("unpack() keeps a record's cycle a cycle, as structured clone does", () => {
  const node: Record<string, unknown> = { n: 1 };
  node.self = node;
  const got = cross([{ value: node, ts: 1 }]) as { value: { self: unknown } }[];
  const clone = structuredClone(node);
  assert.equal(clone.self, clone); // structured clone keeps it
  assert.equal(got[0]!.value.self, got[0]!.value, "the cycle was unrolled into copies");
});

Deno.test("Packer.pack() sends an object that every record of a batch shares about once, not once per record", () => {
  // An enrichment stage attaching one lookup object (say, a catalog entry or a config) to each
  // record: structured clone writes it once and refers to it; columns write it per record.
  const lookup: Record<string, number> = {};
  for (let i = 0; i < 1000; i++) lookup[`k${i}`] = i;
  const batch = Array.from({ length: 512 }, (_, i) => ({ value: { id: i, meta: lookup }, ts: i }));
  const plain = serialize(batch).length;
  const packed = serialize(new Packer().pack(batch)).length;
  assert.ok(packed <= 2 * plain, `packed ${packed} bytes, structured clone ${plain} bytes`);
});

Deno.test("unpack() rebuilds a key that Object.prototype holds read-only (the override mistake)", () => {
  // Hardened hosts freeze Object.prototype; structured clone defines own properties regardless,
  // while `o[key] = value` throws for a key the prototype holds read-only.
  const batch = [{ value: { toString: "x", n: 1 }, ts: 1 }, {
    value: { toString: "y", n: 2 },
    ts: 2,
  }];
  const packed = structuredClone(new Packer().pack(batch));
  Object.defineProperty(Object.prototype, "toString", { writable: false });
  let got: unknown;
  try {
    const expected = structuredClone(batch);
    got = unpack(packed);
    assertSame(got, expected);
  } finally {
    Object.defineProperty(Object.prototype, "toString", { writable: true });
  }
});

Deno.test("Packer.pack() reads a getter once, also when it leaves the batch to structured clone", () => {
  let reads = 0;
  const batch = [
    {
      get value(): number {
        return ++reads;
      },
      ts: 1,
    },
    { value: 2 }, // another shape: the packer gives up after reading the first record
  ];
  const got = cross(batch) as { value: number }[];
  // Structured clone alone reads it once and sends 1.
  assert.equal(got[0]!.value, 1, `the getter was read ${reads} times`);
});

Deno.test("Packer.pack() sends a Proxy of a plain object as a plain object (structured clone refuses it)", () => {
  // Documented in actors/_wire.ts: a Proxy cannot be told from the object it wraps, so it is
  // packed by its keys. The receiver gets a plain copy; without packing, postMessage would throw.
  const proxied = [{ value: new Proxy({ a: 1 }, {}), ts: 1 }, { value: { a: 2 }, ts: 2 }];
  assert.throws(() => structuredClone(proxied), { name: "DataCloneError" });
  assertSame(cross(proxied), [{ value: { a: 1 }, ts: 1 }, { value: { a: 2 }, ts: 2 }]);
});
