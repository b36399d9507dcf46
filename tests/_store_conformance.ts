// The store conformance suite: one set of tests that every Store backend passes (Deno KV, Redis,
// MongoDB, memory). A backend's test file calls `storeConformance()` with a fixture factory and
// what the backend supports; the suite registers `Deno.test`s named
// "<Backend> conforms: <behaviour>". Each test gets a fresh fixture (an empty namespace: a key
// prefix, a database, a KV file or namespace, a memory store name), closes every store it opened
// and removes what it wrote, also when it fails.
import assert from "node:assert/strict";
import type { Store } from "../stores/store.ts";
import { addTo, mergeInto } from "../stores/_store_writes.ts";

/** What a backend offers beyond the required `Store` methods. */
export interface StoreSupports {
  /** It has `increment()`. */
  increment: boolean;
  /** It has `incrementMany()`. */
  incrementMany: boolean;
  /** It has `mergeMany()`. */
  mergeMany: boolean;
  /** Every `fixture.open()` is a handle on the same entries, also after the others closed. */
  reopen: boolean;
  /** `fixture.open({ compressAboveBytes })` gzips values above that size. */
  compression: boolean;
  /** Keys longer than this many UTF-8 bytes are refused with a `RangeError`. Default: no limit. */
  keyLimitBytes?: number;
  /** Values larger than this many bytes are refused with a `RangeError`. Default: no limit. */
  valueLimitBytes?: number;
}

/** Options a fixture passes on to the backend when it opens a store. */
export interface ConformanceOpenOptions {
  /** gzip values whose encoding is longer than this (backends with `supports.compression`). */
  compressAboveBytes?: number;
}

/** One test's view of a backend: an empty namespace, and handles on it. */
export interface ConformanceFixture {
  /** Opens a handle on this fixture's namespace. */
  open(options?: ConformanceOpenOptions): Promise<Store>;
  /** Opens a store on another namespace of the same storage (prefix, collection, KV namespace). */
  openOther(): Promise<Store>;
  /** Moves the stores' injected clock forward; without it, the suite really waits. */
  advance?(ms: number): void;
  /** Bytes the backend holds for `key` of this namespace (to see compression at work). */
  storedBytes?(key: string): Promise<number>;
  /** Removes what the fixture's namespaces hold; called once the test closed its stores. */
  cleanup(): Promise<void>;
}

/** Options of {@linkcode storeConformance}. */
export interface StoreConformanceOptions {
  /** Creates a fresh fixture for one test. */
  fixture(): Promise<ConformanceFixture>;
  /** What the backend offers. */
  supports: StoreSupports;
  /**
   * Size of the large values, bytes (at least a MiB). Default 3 MiB. A server that keeps every
   * write (mongo-java-server's oplog) gets less.
   */
  largeValueBytes?: number;
}

interface Ctx {
  /** Opens a handle on the namespace; closed by the suite after the test. */
  open(options?: ConformanceOpenOptions): Promise<Store>;
  /** Opens a store on another namespace of the same storage. */
  other(): Promise<Store>;
  /** `n` handles on the namespace: separate ones where the backend can reopen, else one. */
  handles(n: number): Promise<Store[]>;
  /** Lets `ms` pass on the stores' clock. */
  elapse(ms: number): Promise<void>;
  /** Polls `check` until it holds, letting time pass (up to 3 s: expired entries go promptly). */
  eventually(what: string, check: () => Promise<boolean>): Promise<void>;
  fixture: ConformanceFixture;
}

/** Short time to live of the TTL tests, ms. */
const TTL = 250;
const MiB = 1024 * 1024;

/**
 * Registers the conformance tests of one backend.
 *
 * @param name The backend as test names show it, e.g. `"RedisStore"`.
 * @param options The fixture factory and what the backend supports.
 */
export function storeConformance(name: string, options: StoreConformanceOptions): void {
  const { supports } = options;
  const test = (behaviour: string, fn: (c: Ctx) => Promise<void>, enabled = true) => {
    // A capability the backend does not have (a size limit, compression, reopening) has no test.
    if (!enabled) return;
    Deno.test({
      name: `${name} conforms: ${behaviour}`,
      async fn() {
        const fixture = await options.fixture();
        const opened: Store[] = [];
        const track = async (p: Promise<Store>) => {
          const store = await p;
          opened.push(store);
          return store;
        };
        const ctx: Ctx = {
          open: (o) => track(fixture.open(o)),
          other: () => track(fixture.openOther()),
          async handles(n) {
            const first = await ctx.open();
            if (!supports.reopen) return Array.from({ length: n }, () => first);
            const rest = await Promise.all(Array.from({ length: n - 1 }, () => ctx.open()));
            return [first, ...rest];
          },
          elapse: (ms) => fixture.advance ? Promise.resolve(fixture.advance(ms)) : sleep(ms),
          async eventually(what, check) {
            const end = Date.now() + 3_000;
            while (!(await check())) {
              if (Date.now() > end) assert.fail(`${what}: not within 3 s`);
              await ctx.elapse(25);
            }
          },
          fixture,
        };
        try {
          await fn(ctx);
        } finally {
          for (const store of opened) await store.close();
          await fixture.cleanup();
        }
      },
    });
  };

  test("offers exactly the optional methods it claims", async ({ open }) => {
    const store = await open();
    assert.equal(typeof store.increment === "function", supports.increment, "increment");
    assert.equal(typeof store.incrementMany === "function", supports.incrementMany);
    assert.equal(typeof store.mergeMany === "function", supports.mergeMany, "mergeMany");
  });

  test("get()/set()/delete() round-trip structured-cloneable values", async ({ open }) => {
    const store = await open();
    const values = sampleValues();
    for (const [key, value] of values) await store.set(key, value);
    for (const [key, value] of sampleValues()) {
      assert.deepEqual(await store.get(key), value, `value of "${key}"`);
    }
    assert.deepEqual(await store.getMany(values.map(([k]) => k)), sampleValues().map(([, v]) => v));
    // Cycles, checked by hand: after comparing a cyclic value, Deno 2.9's node:assert deepEqual
    // wrongly fails later comparisons in which one object appears twice.
    const cyclic: Record<string, unknown> = { name: "loop", list: [] };
    cyclic.self = cyclic;
    (cyclic.list as unknown[]).push(cyclic, cyclic);
    await store.set("cyclic", cyclic);
    const back = await store.get<typeof cyclic>("cyclic");
    assert.equal(back?.name, "loop");
    assert.equal(back?.self, back);
    assert.equal((back?.list as unknown[])[1], back);
    await store.delete("cyclic");
    // Overwriting changes the type freely.
    await store.set("object", "now a string");
    await store.set("string", { now: "an object" });
    assert.equal(await store.get("object"), "now a string");
    assert.deepEqual(await store.get("string"), { now: "an object" });
    for (const [key] of values) await store.delete(key);
    assert.deepEqual(await store.getMany(values.map(([k]) => k)), values.map(() => undefined));
    assert.equal(await store.get("never-written"), undefined);
    await store.delete("never-written"); // not an error
    // undefined is a value like any other: the entry exists and scan() lists it.
    await store.set("undefined", undefined);
    assert.deepEqual(await all(store.scan("undef")), [["undefined", undefined]]);
    await store.delete("undefined");
    assert.deepEqual(await all(store.scan()), []);
  });

  test("set() and get() copy values: changing an object later changes nothing stored", async ({ open }) => {
    const store = await open();
    const value = { list: [1, 2], nested: { n: 1 } };
    await store.set("k", value);
    value.list.push(3);
    value.nested.n = 99;
    const read = await store.get<typeof value>("k");
    assert.deepEqual(read, { list: [1, 2], nested: { n: 1 } });
    read!.list.push(4);
    assert.deepEqual(await store.get("k"), { list: [1, 2], nested: { n: 1 } });
  });

  test("getMany() returns values in the order of keys, undefined for absent ones", async ({ open }) => {
    const store = await open();
    await store.setMany(Array.from({ length: 25 }, (_, i) => [`k${i}`, { i }] as const));
    const keys = [
      "k24",
      "absent",
      "k0",
      "k13",
      "k0",
      "also-absent",
      ...range(25).map((i) => `k${i}`),
    ];
    const expected = keys.map((k) => k.startsWith("k") ? { i: Number(k.slice(1)) } : undefined);
    assert.deepEqual(await store.getMany(keys), expected);
    assert.deepEqual(await store.getMany([]), []);
    assert.deepEqual(await store.getMany(["absent"]), [undefined]);
  });

  test("setMany() writes every entry; for a key given twice the last value wins", async ({ open }) => {
    const store = await open();
    const n = 1_200; // over Redis's 500-key and MongoDB's 1000-key chunks and KV's 1000 mutations
    await store.setMany(range(n).map((i) => [`e${i}`, { i, tag: `t${i % 7}` }] as const));
    const got = await store.getMany(range(n).map((i) => `e${i}`));
    assert.deepEqual(got, range(n).map((i) => ({ i, tag: `t${i % 7}` })));
    await store.setMany([["dup", 1], ["x", "x"], ["dup", 2], ["dup", { last: true }]]);
    assert.deepEqual(await store.getMany(["dup", "x"]), [{ last: true }, "x"]);
    await store.setMany([]); // nothing to do
    function* generated(): Generator<[string, number]> {
      yield ["gen:a", 1];
      yield ["gen:b", 2];
    }
    await store.setMany(generated());
    assert.deepEqual(await all(store.scan("gen:")), [["gen:a", 1], ["gen:b", 2]]);
  });

  test("scan() lists a prefix in UTF-8 key order, nothing of other prefixes or namespaces", async ({ open, other }) => {
    const store = await open();
    const keys = [
      "user:1",
      "user:10",
      "user:2",
      "user:Z",
      "user:é",
      "user:ｱ", // U+FF71: after é and before 🍣 in UTF-8, after 🍣 in UTF-16
      "user:🍣",
      "user:",
      "users",
      "user",
      "use",
      "order:1",
      "uſer:1",
    ];
    await store.setMany(keys.map((k, i) => [k, i]));
    const neighbour = await other();
    await neighbour.setMany([["user:1", "other"], ["user:x", "other"], ["zzz", "other"]]);
    const expect = (prefix: string) =>
      utf8Sorted(keys.filter((k) => k.startsWith(prefix))).map((k) => [k, keys.indexOf(k)]);
    assert.deepEqual(await all(store.scan("user:")), expect("user:"));
    assert.deepEqual(await all(store.scan("user")), expect("user"));
    assert.deepEqual(await all(store.scan()), expect(""));
    assert.deepEqual(await all(store.scan("")), expect(""));
    assert.deepEqual(await all(store.scan("nothing")), []);
    await store.delete("user:2");
    assert.deepEqual(
      (await all(store.scan("user:"))).map(([k]) => k),
      utf8Sorted(keys.filter((k) => k.startsWith("user:") && k !== "user:2")),
    );
    assert.deepEqual(await all(neighbour.scan("user:")), [["user:1", "other"], [
      "user:x",
      "other",
    ]]);
  });

  test("scan() treats its prefix literally (glob and regex characters)", async ({ open }) => {
    const store = await open();
    const keys = ["a*b", "a?b", "a[b]", "a\\b", "a%b", "a_b", "a.b", "a^b", "a$b", "axb", "ab"];
    await store.setMany(keys.map((k) => [k, k]));
    for (const prefix of ["a*", "a?", "a[", "a\\", "a%", "a_", "a.", "a^", "a$"]) {
      assert.deepEqual(
        (await all(store.scan(prefix))).map(([k]) => k),
        keys.filter((k) => k.startsWith(prefix)),
        `scan("${prefix}")`,
      );
    }
    assert.equal((await all(store.scan("a"))).length, keys.length);
  });

  test("scan() pages through many entries in order", async ({ open }) => {
    const store = await open();
    const keys = range(1_300).map((i) => `p:${i}`);
    await store.setMany(keys.map((k, i) => [k, i]));
    await store.setMany(range(200).map((i) => [`q:${i}`, -i]));
    const listed = await all(store.scan<number>("p:"));
    assert.deepEqual(listed.map(([k]) => k), utf8Sorted(keys));
    for (const [k, v] of listed) assert.equal(v, Number(k.slice(2)));
  });

  test(
    "increment() adds atomically: absent counts as 0, concurrent increments sum exactly",
    async (c) => {
      const hs = await c.handles(4);
      const store = hs[0]!;
      assert.equal(await store.increment!("n", 5), 5);
      assert.equal(await store.increment!("n", -2), 3);
      assert.equal(await store.increment!("n", 0.5), 3.5);
      assert.equal(await store.increment!("n", 0.25), 3.75);
      assert.equal(await store.get("n"), 3.75);
      const results = await Promise.all(
        hs.flatMap((h) => range(10).map(() => h.increment!("c", 1))),
      );
      assert.equal(await store.get("c"), 40);
      // Each increment saw its own result: nobody read a value another had already added to.
      assert.deepEqual(results.sort((a, b) => a - b), range(40).map((i) => i + 1));
      await store.set("fromSet", 10);
      assert.equal(await store.increment!("fromSet", 1), 11);
      await store.set("int32", 2 ** 31 - 1);
      assert.equal(await store.increment!("int32", 1), 2 ** 31);
      assert.equal(await store.get("int32"), 2 ** 31);
      await store.set("large", 2 ** 52);
      assert.equal(await store.increment!("large", 1), 2 ** 52 + 1);
      await store.set("negativeZero", -0);
      assert.ok(Object.is(await store.get("negativeZero"), -0));
      assert.equal(await store.increment!("negativeZero", 2), 2);
      assert.equal(await hs[hs.length - 1]!.get("large"), 2 ** 52 + 1);
    },
    supports.increment,
  );

  test(
    "increment() refuses a non-number value or amount with a TypeError, changing nothing",
    async ({ open }) => {
      const store = await open();
      await store.setMany([["text", "abc"], ["numeric-text", "12"], ["obj", { a: 1 }], ["n", 1]]);
      for (const key of ["text", "numeric-text", "obj"]) {
        await assert.rejects(() => store.increment!(key, 1), TypeError, key);
      }
      assert.deepEqual(await store.getMany(["text", "numeric-text", "obj"]), [
        "abc",
        "12",
        { a: 1 },
      ]);
      for (const by of [NaN, Infinity, "1", undefined]) {
        await assert.rejects(() => store.increment!("n", by as number), TypeError, String(by));
      }
      assert.equal(await store.get("n"), 1);
    },
    supports.increment,
  );

  test(
    "incrementMany() adds per key, both amounts of a repeated key, concurrently exact",
    async (c) => {
      const hs = await c.handles(4);
      const store = hs[0]!;
      await store.incrementMany!([["a", 1], ["b", 2], ["a", 3]]);
      assert.deepEqual(await store.getMany(["a", "b"]), [4, 2]);
      await store.incrementMany!([]);
      const keys = range(10).map((i) => `k${i}`);
      await Promise.all(
        hs.flatMap((h) =>
          range(5).map(() => h.incrementMany!([...keys.map((k) => [k, 1] as const), ["k0", 0.5]]))
        ),
      );
      assert.deepEqual(await store.getMany(keys), keys.map((k) => k === "k0" ? 30 : 20));
    },
    supports.incrementMany,
  );

  test(
    "incrementMany() checks every key first: one non-number fails the call, writing nothing",
    async ({ open }) => {
      const store = await open();
      await store.setMany([["a", 4], ["text", "x"]]);
      await assert.rejects(
        () => store.incrementMany!([["a", 1], ["text", 1], ["c", 1]]),
        TypeError,
      );
      assert.deepEqual(await store.getMany(["a", "text", "c"]), [4, "x", undefined]);
      await assert.rejects(() => store.incrementMany!([["a", 1], ["c", NaN]]), TypeError);
      assert.deepEqual(await store.getMany(["a", "c"]), [4, undefined]);
    },
    supports.incrementMany,
  );

  test(
    "mergeMany() shallow-merges; absent or non-object entries become the object",
    async ({ open }) => {
      const store = await open();
      await store.mergeMany!([["u", { name: "ada" }]]);
      assert.deepEqual(await store.get("u"), { name: "ada" });
      await store.mergeMany!([["u", { plan: "pro" }], ["v", { x: 1 }], ["u", { name: "ada l." }]]);
      assert.deepEqual(await store.getMany(["u", "v"]), [{ name: "ada l.", plan: "pro" }, {
        x: 1,
      }]);
      await store.set("deep", { a: { x: 1, y: 2 }, b: 1 });
      await store.mergeMany!([["deep", { a: { x: 3 } }]]);
      assert.deepEqual(await store.get("deep"), { a: { x: 3 }, b: 1 }, "shallow, not deep");
      await store.setMany([["num", 5], ["arr", [1, 2]], ["str", "s"], ["map", new Map([[1, 2]])]]);
      await store.mergeMany!(["num", "arr", "str", "map"].map((k) => [k, { f: k }]));
      assert.deepEqual(await store.getMany(["num", "arr", "str", "map"]), [
        { f: "num" },
        { f: "arr" },
        { f: "str" },
        { f: "map" },
      ]);
      const rich = { at: new Date(5), m: new Map([["k", [1n]]]), bytes: new Uint8Array([1, 2]) };
      await store.mergeMany!([["rich", rich]]);
      assert.deepEqual(await store.get("rich"), rich);
      await store.mergeMany!([]);
    },
    supports.mergeMany,
  );

  test("mergeMany() from concurrent writers loses no field", async (c) => {
    const hs = await c.handles(4);
    await hs[0]!.set("shared", { base: true });
    await Promise.all(
      range(20).map((i) =>
        hs[i % hs.length]!.mergeMany!([
          ["shared", { [`f${i}`]: i }],
          ["fresh", { [`g${i}`]: i }], // absent at first: the writers race to create it
          [`own${i}`, { i }],
        ])
      ),
    );
    const expected: Record<string, unknown> = { base: true };
    for (const i of range(20)) expected[`f${i}`] = i;
    assert.deepEqual(await hs[1 % hs.length]!.get("shared"), expected);
    const fresh: Record<string, unknown> = {};
    for (const i of range(20)) fresh[`g${i}`] = i;
    assert.deepEqual(await hs[0]!.get("fresh"), fresh);
    assert.deepEqual(
      await hs[0]!.getMany(range(20).map((i) => `own${i}`)),
      range(20).map((i) => ({ i })),
    );
  }, supports.mergeMany);

  test("the store sink's merge and increment writes lose nothing under concurrent writers", async (c) => {
    const hs = await c.handles(4);
    await Promise.all(
      range(12).map((i) =>
        mergeInto(
          hs[i % hs.length]!,
          new Map([["doc", { [`f${i}`]: i }], [`doc${i % 3}`, { [`g${i}`]: true }]]),
          {},
        )
      ),
    );
    await Promise.all(
      range(12).map((i) =>
        addTo(hs[i % hs.length]!, new Map([["sum", i], [`count${i % 2}`, 1]]), {})
      ),
    );
    const doc = await hs[0]!.get<Record<string, number>>("doc");
    assert.deepEqual(Object.keys(doc ?? {}).sort(), range(12).map((i) => `f${i}`).sort());
    for (const j of range(3)) {
      const fields = Object.keys(await hs[0]!.get<object>(`doc${j}`) ?? {}).sort();
      assert.deepEqual(fields, range(12).filter((i) => i % 3 === j).map((i) => `g${i}`).sort());
    }
    assert.deepEqual(await hs[0]!.getMany(["sum", "count0", "count1"]), [66, 6, 6]);
  });

  test("set() and setMany() with ttlMs: entries expire from get(), getMany() and scan()", async (c) => {
    const store = await c.open();
    const large = randomBytes(300_000);
    await store.set("t1", { v: 1 }, { ttlMs: TTL });
    await store.setMany([["t2", 2], ["t3", "three"], ["t4", large]], { ttlMs: TTL });
    await store.set("keep", "forever");
    assert.deepEqual(await store.getMany(["t1", "t2", "t3", "t4", "keep"]), [
      { v: 1 },
      2,
      "three",
      large,
      "forever",
    ]);
    await c.elapse(TTL);
    await c.eventually("t1 expires", async () => (await store.get("t1")) === undefined);
    await c.eventually(
      "t2..t4 expire",
      async () => (await store.getMany(["t2", "t3", "t4"])).every((v) => v === undefined),
    );
    assert.deepEqual(await all(store.scan()), [["keep", "forever"]]);
    await store.set("t1", "again");
    assert.equal(await store.get("t1"), "again");
  });

  test("set() without ttlMs clears an earlier expiry; a later ttlMs replaces it", async (c) => {
    const store = await c.open();
    await store.set("cleared", 1, { ttlMs: TTL });
    await store.set("cleared", 2);
    await store.setMany([["cleared-many", 1]], { ttlMs: TTL });
    await store.setMany([["cleared-many", 2]]);
    await store.set("extended", 1, { ttlMs: TTL });
    await store.set("extended", 2, { ttlMs: 60_000 });
    await store.set("shortened", 1, { ttlMs: 60_000 });
    await store.set("shortened", 2, { ttlMs: TTL });
    await c.elapse(2 * TTL);
    await c.eventually(
      "shortened expires",
      async () => (await store.get("shortened")) === undefined,
    );
    assert.deepEqual(await store.getMany(["cleared", "cleared-many", "extended"]), [2, 2, 2]);
  });

  test("increment() keeps an entry's expiry and starts from 0 once it expired", async (c) => {
    const store = await c.open();
    await store.set("n", 10, { ttlMs: TTL });
    assert.equal(await store.increment!("n", 1), 11);
    await c.elapse(TTL);
    await c.eventually("n expires", async () => (await store.get("n")) === undefined);
    assert.equal(await store.increment!("n", 1), 1);
    await c.elapse(2 * TTL);
    assert.equal(await store.get("n"), 1, "an increment of an absent key sets no expiry");
  }, supports.increment);

  test(
    "incrementMany() and mergeMany() with ttlMs expire; without, merge clears the expiry",
    async (c) => {
      const store = await c.open();
      if (store.incrementMany) {
        await store.incrementMany([["count", 1]], { ttlMs: TTL });
        await store.set("kept", 1, { ttlMs: TTL });
        await store.incrementMany([["kept", 1]]); // keeps its expiry
      }
      if (store.mergeMany) {
        await store.mergeMany([["m", { a: 1 }]], { ttlMs: TTL });
        await store.mergeMany([["m2", { a: 1 }]], { ttlMs: TTL });
        await store.mergeMany([["m2", { b: 2 }]]); // the default: no expiry
      }
      await c.elapse(TTL);
      await c.eventually(
        "entries expire",
        async () => (await store.getMany(["count", "kept", "m"])).every((v) => v === undefined),
      );
      if (store.mergeMany) {
        assert.deepEqual(await store.get("m2"), { a: 1, b: 2 });
        await store.mergeMany([["m", { b: 2 }]]);
        assert.deepEqual(await store.get("m"), { b: 2 }, "no field of the expired entry is left");
      }
      if (store.incrementMany) {
        await store.incrementMany([["count", 5]]);
        assert.equal(await store.get("count"), 5);
      }
    },
    supports.incrementMany || supports.mergeMany,
  );

  test("values of over a MiB round-trip (over KV's 64 KiB entry limit)", async ({ open }) => {
    const store = await open();
    const size = options.largeValueBytes ?? 3 * MiB;
    const bytes = randomBytes(size + 17);
    const text = "Sluice ストリーム 🍣 ü ".repeat(Math.ceil(size / 29)); // 29 UTF-8 bytes
    const record = {
      id: "big",
      rows: range(Math.ceil(size / 50)).map((i) => ({ i, name: `row ${i}`, at: new Date(i) })),
    };
    await store.set("bytes", bytes);
    await store.setMany([["text", text], ["record", record], ["small", 1]]);
    assert.deepEqual(await store.get("bytes"), bytes);
    assert.deepEqual(await store.getMany(["text", "record", "small"]), [text, record, 1]);
    assert.deepEqual(await all(store.scan()), [
      ["bytes", bytes],
      ["record", record],
      ["small", 1],
      ["text", text],
    ]);
    await store.setMany([["bytes", "now small"], ["small", bytes]]);
    assert.deepEqual(await store.getMany(["bytes", "small"]), ["now small", bytes]);
    await store.delete("record");
    assert.equal(await store.get("record"), undefined);
    assert.deepEqual((await all(store.scan())).map(([k]) => k), ["bytes", "small", "text"]);
  });

  test(
    "a value over the documented size limit is refused with a RangeError, writing nothing",
    async ({ open }) => {
      const store = await open();
      const over = randomBytes(supports.valueLimitBytes! + 1024);
      await assert.rejects(() => store.set("over", over), RangeError);
      await assert.rejects(() => store.setMany([["ok", 1], ["over", over]]), RangeError);
      assert.deepEqual(await store.getMany(["over", "ok"]), [undefined, undefined]);
    },
    supports.valueLimitBytes !== undefined,
  );

  test("unicode keys and values round-trip; combining sequences stay distinct keys", async ({ open }) => {
    const store = await open();
    const keys = [
      "🍣",
      "東京",
      "東京タワー",
      "e\u0301", // e + combining acute accent
      "\u00e9", // precomposed é
      "👨‍👩‍👧",
      "שלום",
      "ключ",
      "tab\tand\nnewline",
      "nul\u0000char",
      " ",
      "",
      "\u{10FFFF}",
    ];
    const valueOf = (k: string) => ({ key: k, text: `${k}|${k}`, list: [k, "€", "\u{1F600}"] });
    await store.setMany(keys.map((k) => [k, valueOf(k)]));
    for (const k of keys) assert.deepEqual(await store.get(k), valueOf(k), JSON.stringify(k));
    assert.deepEqual(await store.getMany(keys), keys.map(valueOf));
    assert.deepEqual(
      (await all(store.scan())).map(([k]) => k),
      utf8Sorted(keys),
    );
    assert.deepEqual((await all(store.scan("東京"))).map(([k]) => k), ["東京", "東京タワー"]);
    assert.deepEqual((await all(store.scan("e"))).map(([k]) => k), ["e\u0301"]);
    await store.delete("e\u0301");
    assert.deepEqual(await store.get("\u00e9"), valueOf("\u00e9"));
    await store.set("value", "Ω≈ç√∫ 𝕊𝕝𝕦𝕚𝕔𝕖 \u202Ertl\u202C 👩🏽‍💻");
    assert.equal(await store.get("value"), "Ω≈ç√∫ 𝕊𝕝𝕦𝕚𝕔𝕖 \u202Ertl\u202C 👩🏽‍💻");
  });

  test("entries survive close and reopen", async ({ open }) => {
    const first = await open();
    const large = randomBytes(200_000);
    await first.setMany(sampleValues());
    await first.setMany([["large", large], ["🍣", "寿司"]]);
    await first.set("ttl-long", "still here", { ttlMs: 60_000 });
    if (first.increment) await first.increment("count", 3);
    await first.close();
    const second = await open();
    for (const [key, value] of sampleValues()) {
      assert.deepEqual(await second.get(key), value, key);
    }
    assert.deepEqual(await second.getMany(["large", "🍣", "ttl-long"]), [
      large,
      "寿司",
      "still here",
    ]);
    if (first.increment) assert.equal(await second.get("count"), 3);
    const keys = [...sampleValues().map(([k]) => k), "large", "🍣", "ttl-long"];
    if (first.increment) keys.push("count");
    assert.deepEqual((await all(second.scan())).map(([k]) => k), utf8Sorted(keys));
    await second.delete("🍣");
    await second.close();
    const third = await open();
    assert.equal(await third.get("🍣"), undefined);
    assert.deepEqual(await third.get("large"), large);
  }, supports.reopen);

  test("close() twice is not an error; calls after it fail with SluiceError E_CLOSED", async (c) => {
    const store = await c.open();
    await store.set("a", 1);
    await store.close();
    await store.close();
    const calls: [string, () => Promise<unknown>][] = [
      ["get", () => store.get("a")],
      ["getMany", () => store.getMany(["a"])],
      ["set", () => store.set("a", 2)],
      ["setMany", () => store.setMany([["a", 2]])],
      ["delete", () => store.delete("a")],
      ["scan", () => all(store.scan())],
    ];
    if (store.increment) calls.push(["increment", () => store.increment!("n", 1)]);
    if (store.incrementMany) calls.push(["incrementMany", () => store.incrementMany!([["n", 1]])]);
    if (store.mergeMany) calls.push(["mergeMany", () => store.mergeMany!([["m", {}]])]);
    for (const [what, call] of calls) {
      await assert.rejects(call, (e: Error & { code?: string }) => {
        assert.equal(e.name, "SluiceError", what);
        assert.equal(e.code, "E_CLOSED", what);
        return true;
      });
    }
    if (supports.reopen) {
      const again = await c.open();
      assert.equal(await again.get("a"), 1);
    }
  });

  test("bad keys, TTLs and amounts are rejected with TypeError or RangeError", async ({ open }) => {
    const store = await open();
    await store.set("ok", 1);
    for (const key of [42, undefined, null, {}, ["a"]] as unknown as string[]) {
      const calls: [string, () => Promise<unknown>][] = [
        ["get", () => store.get(key)],
        ["getMany", () => store.getMany(["ok", key])],
        ["set", () => store.set(key, 1)],
        ["setMany", () => store.setMany([["fine", 1], [key, 1]])],
        ["delete", () => store.delete(key)],
      ];
      // scan(undefined) is scan() (the default prefix)
      if (key !== undefined) calls.push(["scan", () => all(store.scan(key))]);
      if (store.increment) calls.push(["increment", () => store.increment!(key, 1)]);
      if (store.incrementMany) {
        calls.push(["incrementMany", () => store.incrementMany!([["fine", 1], [key, 1]])]);
      }
      if (store.mergeMany) {
        calls.push(["mergeMany", () => store.mergeMany!([["fine", {}], [key, {}]])]);
      }
      for (const [what, call] of calls) {
        await assert.rejects(call, TypeError, `${what}(${String(key)})`);
      }
    }
    for (const ttlMs of [0, -1, NaN, Infinity, "100"] as unknown as number[]) {
      const o = { ttlMs };
      const calls: [string, () => Promise<unknown>][] = [
        ["set", () => store.set("fine", 1, o)],
        ["setMany", () => store.setMany([["fine", 1]], o)],
      ];
      if (store.incrementMany) calls.push(["incrementMany", () => store.incrementMany!([], o)]);
      if (store.mergeMany) calls.push(["mergeMany", () => store.mergeMany!([], o)]);
      for (const [what, call] of calls) {
        await assert.rejects(call, RangeError, `${what} with ttlMs ${String(ttlMs)}`);
      }
    }
    if (store.incrementMany) {
      for (const by of [NaN, -Infinity, "1"] as unknown as number[]) {
        await assert.rejects(() => store.incrementMany!([["fine", by]]), TypeError, String(by));
      }
    }
    if (store.mergeMany) {
      const notObjects = [null, [1], new Map(), "x", 5, new Date(0)];
      for (const fields of notObjects as unknown as Record<string, unknown>[]) {
        await assert.rejects(() => store.mergeMany!([["fine", fields]]), TypeError);
      }
    }
    if (supports.keyLimitBytes !== undefined) {
      const long = "k".repeat(supports.keyLimitBytes + 1);
      await assert.rejects(() => store.set(long, 1), RangeError);
      await assert.rejects(() => store.get(long), RangeError);
    }
    const longish = "ключ-".repeat(100); // 1000 UTF-8 bytes: within every backend's limit
    await store.set(longish, 1);
    assert.equal(await store.get(longish), 1);
    assert.equal(await store.get("fine"), undefined, "nothing was written");
    assert.equal(await store.get("ok"), 1);
  });

  test("keys that are not well-formed UTF-16 are refused, not stored under another key", async ({ open }) => {
    const store = await open();
    await store.set("\uFFFD", "replacement character");
    for (const key of ["\uD800", "a\uDC00b", "end\uD83C"]) {
      await assert.rejects(() => store.set(key, "lone surrogate"), TypeError, JSON.stringify(key));
      await assert.rejects(() => store.get(key), TypeError, JSON.stringify(key));
    }
    assert.equal(await store.get("\uFFFD"), "replacement character");
    assert.deepEqual((await all(store.scan())).map(([k]) => k), ["\uFFFD"]);
  });

  test("a value that is not structured-cloneable is refused with a DataCloneError, writing nothing", async ({ open }) => {
    const store = await open();
    const bad: unknown[] = [() => 1, Symbol("s"), { f() {} }, new WeakMap(), [1, () => 2]];
    for (const value of bad) {
      // What structuredClone() throws: a DOMException named DataCloneError.
      await assert.rejects(() => store.set("bad", value), (e: Error) => {
        assert.ok(e instanceof DOMException, `${e.name}: ${e.message}`);
        assert.equal(e.name, "DataCloneError");
        assert.match(e.message, /"bad"/, "the message names the key");
        assert.ok(e.message.length < 300, `a short message: ${e.message}`);
        return true;
      });
      await assert.rejects(
        () => store.setMany([["fine", 1], ["bad", value]]),
        (e: Error) => e.name === "DataCloneError",
      );
    }
    if (store.mergeMany) {
      await assert.rejects(
        () => store.mergeMany!([["fine", { a: 1 }], ["bad", { f: () => 1 }]]),
        (e: Error) => e.name === "DataCloneError",
      );
    }
    assert.deepEqual(await store.getMany(["bad", "fine"]), [undefined, undefined]);
    assert.deepEqual(await all(store.scan()), []);
    await store.set("fine", 1);
    assert.equal(await store.get("fine"), 1);
  });

  test("compressAboveBytes gzips large values; stores without it read them back", async (c) => {
    const zipped = await c.open({ compressAboveBytes: 1024 });
    const plain = await c.open();
    const text = "abc, ".repeat(250_000);
    const doc = {
      text,
      rows: range(5_000).map((i) => ({ i, tag: "same" })),
      map: new Map([["k", text.slice(0, 5_000)]]),
    };
    const noise = randomBytes(100_000); // incompressible
    await zipped.setMany([["doc", doc], ["noise", noise], ["small", { a: 1 }]]);
    await plain.set("raw", doc);
    for (const store of [zipped, plain]) {
      assert.deepEqual(await store.getMany(["doc", "noise", "small", "raw"]), [
        doc,
        noise,
        { a: 1 },
        structuredClone(doc),
      ]);
    }
    if (c.fixture.storedBytes) {
      const [zippedBytes, rawBytes] = [
        await c.fixture.storedBytes("doc"),
        await c.fixture.storedBytes("raw"),
      ];
      assert.ok(rawBytes > 1_000_000, `uncompressed: ${rawBytes} bytes`);
      assert.ok(zippedBytes < 100_000, `compressed: ${zippedBytes} bytes`);
    }
    // Every value still behaves as a value: counters count, merges merge, scans list.
    const always = await c.open({ compressAboveBytes: 0 });
    await always.set("count", 5);
    if (always.increment) assert.equal(await always.increment("count", 1), 6);
    if (always.incrementMany) await always.incrementMany([["count", 1], ["fresh", 2]]);
    if (always.mergeMany) {
      await always.mergeMany([["rec", { a: "x".repeat(5_000) }]]);
      await always.mergeMany([["rec", { b: 1 }]]);
      assert.deepEqual(await plain.get("rec"), { a: "x".repeat(5_000), b: 1 });
    }
    if (always.incrementMany) {
      assert.deepEqual(await plain.getMany(["count", "fresh"]), [always.increment ? 7 : 6, 2]);
    }
    assert.deepEqual(
      (await all(always.scan())).map(([k]) => k),
      utf8Sorted([
        "doc",
        "noise",
        "small",
        "raw",
        "count",
        ...(always.incrementMany ? ["fresh"] : []),
        ...(always.mergeMany ? ["rec"] : []),
      ]),
    );
    await assert.rejects(() => c.open({ compressAboveBytes: -1 }), RangeError);
  }, supports.compression && supports.reopen);
}

/** Values of every structured-cloneable kind, fresh at every call. */
function sampleValues(): [string, unknown][] {
  const view = new Uint8Array([9, 8, 7, 6, 5]).subarray(1, 4);
  return [
    ["null", null],
    ["true", true],
    ["false", false],
    ["zero", 0],
    ["negativeZero", -0],
    ["int", 42],
    ["negative", -7],
    ["float", 1.5],
    ["maxSafe", Number.MAX_SAFE_INTEGER],
    ["tiny", 5e-324],
    ["huge", 1e300],
    ["nan", NaN],
    ["infinity", Infinity],
    ["negativeInfinity", -Infinity],
    ["emptyString", ""],
    ["string", "plain text"],
    ["numericString", "12"],
    ["loneSurrogate", "lone \uD800 surrogate"],
    ["bigint", 12n],
    ["bigNegative", -(2n ** 70n)],
    ["object", { n: 1, s: "x", nested: { list: [1, null, "x", { deep: [true] }], flag: false } }],
    ["emptyObject", {}],
    ["array", [1, "two", [3], { four: 4 }]],
    ["emptyArray", []],
    ["sparse", [1, , 3]],
    ["date", new Date(Date.UTC(2024, 1, 29, 12, 30, 15, 123))],
    ["inObject", { at: new Date(0), tags: ["a"], nothing: null }],
    ["withUndefined", { a: undefined, b: [undefined] }],
    ["bytes", new Uint8Array([0, 1, 2, 253, 254, 255])],
    ["view", view],
    ["floats", new Float64Array([1.5, -0.25])],
    ["buffer", new Uint8Array([7, 8, 9]).buffer],
    ["map", new Map<unknown, unknown>([["a", 1], [2, { b: [3] }]])],
    ["set", new Set<unknown>(["x", 1, "y"])],
    ["regexp", /ab+c/gi],
    ["oddFieldNames", { "": "empty", "$dollar": 1, "dot.ted": 2, "nul\u0000": 3, "_id": 4 }],
    ["deep", nest(80)],
  ];
}

function nest(depth: number): unknown {
  let value: unknown = "bottom";
  for (let i = 0; i < depth; i++) value = { level: i, next: value };
  return value;
}

/** Keys sorted by their UTF-8 bytes (the order `scan()` promises). */
function utf8Sorted(keys: readonly string[]): string[] {
  const encoder = new TextEncoder();
  const compare = (a: string, b: string) => {
    const x = encoder.encode(a);
    const y = encoder.encode(b);
    for (let i = 0; i < Math.min(x.length, y.length); i++) {
      if (x[i] !== y[i]) return x[i]! - y[i]!;
    }
    return x.length - y.length;
  };
  return [...keys].sort(compare);
}

function randomBytes(n: number): Uint8Array {
  const out = new Uint8Array(n);
  for (let at = 0; at < n; at += 65_536) crypto.getRandomValues(out.subarray(at, at + 65_536));
  return out;
}

function range(n: number): number[] {
  return Array.from({ length: n }, (_, i) => i);
}

async function all<T>(iter: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const x of iter) out.push(x);
  return out;
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
