// enrich() driven record by record with the harness: its clock (ctx.now) is the cache's clock, so
// TTLs are exact. The store is a named MemoryStore, which the stage opens in this thread; its
// getMany is wrapped to count (and sometimes fail) the reads the stage makes.
import assert from "node:assert/strict";
import { ConfigError, RetriableError } from "../../../actors/errors.ts";
import type { StreamRecord } from "../../../actors/record.ts";
import { enrich, type EnrichOptions } from "../../../processors/enrich.ts";
import { MemoryStore } from "../../../stores/memory/memory_store.ts";
import { harness, rec } from "./_harness.ts";
import { collect, fromArray, memoryDeadLetters, pipeline } from "../../../mod.ts";

type Fail = (keys: readonly string[]) => Error | undefined;

/** Wraps MemoryStore.prototype.getMany for the scope: records each call's keys, may fail some. */
function spyGetMany(fail?: Fail): { calls: string[][] } & Disposable {
  const proto = MemoryStore.prototype;
  const original = proto.getMany;
  const calls: string[][] = [];
  proto.getMany = function (this: MemoryStore, keys: readonly string[]) {
    calls.push([...keys]);
    const error = fail?.(keys);
    return error ? Promise.reject(error) : original.call(this, keys);
  } as typeof original;
  return { calls, [Symbol.dispose]: () => void (proto.getMany = original) };
}

/** A fresh named memory store holding `entries`, and its descriptor. */
async function storeWith(entries: Record<string, unknown>) {
  const name = `enrich-${crypto.randomUUID()}`;
  const store = new MemoryStore({ name });
  await store.setMany(Object.entries(entries));
  return { store, descriptor: { backend: "memory" as const, name } };
}

/** The store, a harness over `enrich(store, options)` and a wrapped getMany. */
async function setup(entries: Record<string, unknown>, options: EnrichOptions = {}, fail?: Fail) {
  const { store, descriptor } = await storeWith(entries);
  const spy = spyGetMany(fail);
  const h = await harness(enrich(descriptor, { cacheHeader: "x-cache", ...options }));
  return {
    store,
    h,
    calls: spy.calls,
    async [Symbol.asyncDispose]() {
      spy[Symbol.dispose]();
      await h.close();
      store.clear();
    },
  };
}

const cacheOf = (records: StreamRecord<unknown>[]) => records.map((r) => r.headers?.["x-cache"]);
const valuesOf = (records: StreamRecord<unknown>[]) => records.map((r) => r.value);

Deno.test("enrich() puts the entry found into `into`, null when absent, leaving the input alone", async () => {
  await using t = await setup({ c1: { name: "Ada" }, c2: "plain" }, { key: "customer.id" });
  const first = { customer: { id: "c1" }, n: 1 };
  const out = await t.h.push([
    rec(first, 5, "k"),
    rec({ customer: { id: "c2" }, n: 2 }),
    rec({ customer: { id: "c3" }, n: 3 }),
  ]);
  assert.deepEqual(valuesOf(out), [
    { customer: { id: "c1" }, n: 1, enriched: { name: "Ada" } },
    { customer: { id: "c2" }, n: 2, enriched: "plain" },
    { customer: { id: "c3" }, n: 3, enriched: null },
  ]);
  assert.deepEqual({ ...out[0], value: undefined }, {
    key: "k",
    ts: 5,
    value: undefined,
    headers: { "x-cache": "miss" },
  });
  assert.deepEqual(first, { customer: { id: "c1" }, n: 1 });
  assert.deepEqual(t.h.dead, []);

  await using nested = await setup({ c1: { name: "Ada" } }, { key: "id", into: "meta.customer" });
  const [one] = await nested.h.push([rec({ id: "c1", meta: { src: "web" } })]);
  assert.deepEqual(one?.value, { id: "c1", meta: { src: "web", customer: { name: "Ada" } } });
});

Deno.test("enrich() reads the distinct keys a batch misses with one getMany, in input order", async () => {
  await using t = await setup({ a: 1, b: 2, d: 4 }, { key: "k" });
  const batch = (...keys: string[]) => keys.map((k, i) => rec({ k, i }));
  const out = await t.h.push(batch("a", "b", "a", "c", "b", "c"));
  assert.deepEqual(t.calls, [["a", "b", "c"]]);
  assert.deepEqual(valuesOf(out).map((v) => (v as { enriched: unknown }).enriched), [
    1,
    2,
    1,
    null,
    2,
    null,
  ]);
  assert.deepEqual(valuesOf(out).map((v) => (v as { i: number }).i), [0, 1, 2, 3, 4, 5]);
  assert.deepEqual(cacheOf(out), ["miss", "miss", "hit", "miss", "hit", "hit"]);

  const next = await t.h.push(batch("a", "d", "c", "d"));
  assert.deepEqual(t.calls, [["a", "b", "c"], ["d"]]);
  assert.deepEqual(cacheOf(next), ["hit", "miss", "hit", "hit"]);

  const hits = await t.h.push(batch("b", "a"));
  assert.equal(t.calls.length, 2, "a batch served by the cache reads nothing");
  assert.deepEqual(cacheOf(hits), ["hit", "hit"]);
});

Deno.test("enrich() remembers an absent key for negativeTtlMs, then reads it again", async () => {
  await using t = await setup({}, { key: "k", cache: { negativeTtlMs: 1000, ttlMs: 60_000 } });
  const x = () => rec({ k: "x" });
  await t.h.push([x(), x()]);
  t.h.now = 999;
  for (let i = 0; i < 5; i++) await t.h.push([x(), x(), x()]);
  assert.deepEqual(t.calls, [["x"]], "17 records, one read");
  await t.store.set("x", "now here");
  t.h.now = 1000;
  const out = await t.h.push([x()]);
  assert.deepEqual(t.calls, [["x"], ["x"]]);
  assert.deepEqual(out[0]?.value, { k: "x", enriched: "now here" });

  await using off = await setup({}, { key: "k", cache: { negativeTtlMs: 0 } });
  await off.h.push([x(), x()]);
  await off.h.push([x()]);
  assert.deepEqual(off.calls, [["x"], ["x"]], "negativeTtlMs 0: absent keys are not cached");
});

Deno.test("enrich() serves a found entry for ttlMs, then reads the store again", async () => {
  await using t = await setup({ p: { price: 1 } }, { key: "sku", cache: { ttlMs: 500 } });
  const p = () => rec({ sku: "p" });
  await t.h.push([p()]);
  await t.store.set("p", { price: 2 });
  t.h.now = 499;
  const cached = await t.h.push([p()]);
  assert.deepEqual(cached[0]?.value, { sku: "p", enriched: { price: 1 } });
  assert.deepEqual(cacheOf(cached), ["hit"]);
  t.h.now = 500;
  const fresh = await t.h.push([p()]);
  assert.deepEqual(fresh[0]?.value, { sku: "p", enriched: { price: 2 } });
  assert.deepEqual(cacheOf(fresh), ["miss"]);
  assert.equal(t.calls.length, 2);
});

Deno.test("enrich() evicts the least recently used key beyond cache.maxEntries", async () => {
  await using t = await setup({ a: 1, b: 2, c: 3 }, { key: "k", cache: { maxEntries: 2 } });
  const r = (k: string) => rec({ k });
  await t.h.push([r("a")]);
  await t.h.push([r("b")]);
  await t.h.push([r("a")]); // a is now more recent than b
  await t.h.push([r("c")]); // evicts b
  assert.deepEqual(cacheOf(await t.h.push([r("a")])), ["hit"]);
  assert.deepEqual(cacheOf(await t.h.push([r("b")])), ["miss"]);
  assert.deepEqual(t.calls, [["a"], ["b"], ["c"], ["b"]]);

  // More distinct keys in one batch than the cache holds: every record still gets its entry.
  const out = await t.h.push([r("a"), r("b"), r("c"), r("a")]);
  assert.deepEqual(valuesOf(out), [
    { k: "a", enriched: 1 },
    { k: "b", enriched: 2 },
    { k: "c", enriched: 3 },
    { k: "a", enriched: 1 },
  ]);
});

Deno.test("enrich() keeps values bigger than cache.maxBytes out of the cache", async () => {
  const big = "x".repeat(4000);
  await using t = await setup({ big, small: "s" }, { key: "k", cache: { maxBytes: 1000 } });
  const r = (k: string) => rec({ k });
  await t.h.push([r("big"), r("small")]);
  const again = await t.h.push([r("big"), r("small")]);
  assert.deepEqual(cacheOf(again), ["miss", "hit"]);
  assert.deepEqual(t.calls, [["big", "small"], ["big"]]);
  assert.deepEqual(again[0]?.value, { k: "big", enriched: big });
});

Deno.test("enrich() onMissing: keep passes null, drop filters, deadLetter names the key", async () => {
  const input = () => [rec({ k: "a" }), rec({ k: "zz" }), rec({ k: "a" })];
  await using drop = await setup({ a: 1 }, { key: "k", onMissing: "drop" });
  assert.deepEqual(valuesOf(await drop.h.push(input())), [
    { k: "a", enriched: 1 },
    { k: "a", enriched: 1 },
  ]);
  assert.deepEqual(drop.h.dead, []);

  await using dl = await setup({ a: 1 }, { key: "k", onMissing: "deadLetter" });
  assert.equal((await dl.h.push(input())).length, 2);
  assert.deepEqual(dl.h.dead, [{
    record: rec({ k: "zz" }),
    reason: 'Cannot enrich record: no entry for key "zz"',
  }]);

  await using keep = await setup({ a: 1 }, { key: "k", merge: (v, found) => ({ v, found }) });
  const kept = await keep.h.push([rec({ k: "zz" })]);
  assert.deepEqual(kept[0]?.value, { v: { k: "zz" }, found: undefined });
});

Deno.test("enrich() dead-letters records without a usable key; finite numbers are looked up as text", async () => {
  await using t = await setup({ "42": "answer", a: "A" }, { key: "id" });
  const out = await t.h.push([
    rec({ id: 42 }),
    rec({}),
    rec({ id: null }),
    rec({ id: { nested: 1 } }),
    rec({ id: NaN }),
    rec(7),
    rec({ id: "a" }),
  ]);
  assert.deepEqual(valuesOf(out), [{ id: 42, enriched: "answer" }, { id: "a", enriched: "A" }]);
  assert.deepEqual(t.h.dead.map((d) => d.reason), [
    'Cannot enrich record: its lookup key (field "id") is undefined, not a string or a finite number',
    'Cannot enrich record: its lookup key (field "id") is null, not a string or a finite number',
    'Cannot enrich record: its lookup key (field "id") is an object, not a string or a finite number',
    'Cannot enrich record: its lookup key (field "id") is NaN, not a string or a finite number',
    'Cannot enrich record: its lookup key (field "id") is undefined, not a string or a finite number',
  ]);
  assert.deepEqual(t.calls, [["42", "a"]]);

  await using byRecordKey = await setup({ a: "A" });
  const [keyed] = await byRecordKey.h.push([rec({ n: 1 }, 0, "a"), rec({ n: 2 })]);
  assert.deepEqual(keyed?.value, { n: 1, enriched: "A" });
  assert.match(byRecordKey.h.dead[0]?.reason ?? "", /lookup key \(record key\) is undefined/);
});

Deno.test("enrich() with a key function and merge; a throwing key function is retried, then dead-lettered", async () => {
  await using t = await setup({ "sku:p": { price: 3 } }, {
    key: (v) => `sku:${(v as { sku: string }).sku}`,
    merge: async (v, found) => ({
      ...(v as object),
      total: await Promise.resolve((found as { price: number }).price * 2),
    }),
  });
  assert.deepEqual(valuesOf(await t.h.push([rec({ sku: "p" })])), [{ sku: "p", total: 6 }]);

  await using bad = await setup({}, { key: (v) => (v as { a: { b: string } }).a.b });
  await bad.h.push([rec({ a: null })]);
  assert.equal(bad.h.dead.length, 1);
  assert.match(bad.h.dead[0]!.reason, /^Cannot enrich record: the key function threw: .*null/);
});

Deno.test("enrich() dead-letters a value that cannot take the `into` field", async () => {
  await using t = await setup({ a: 1 }, { key: "k", into: "meta.x" });
  await t.h.push([rec({ k: "a", meta: 5 }), rec([1])]);
  assert.deepEqual(t.h.dead.map((d) => d.reason), [
    'Cannot enrich record: field "meta" is 5, not an object (pass merge to combine it with the entry found)',
    'Cannot enrich record: its lookup key (field "k") is undefined, not a string or a finite number',
  ]);
  await using plain = await setup({ a: 1 });
  await plain.h.push([rec(3, 0, "a")]);
  assert.match(plain.h.dead[0]!.reason, /the value is 3, not an object/);
});

Deno.test("enrich() gives each record its own copy of the entry: mutations do not reach the cache", async () => {
  await using t = await setup({ a: { tags: ["x"] } }, { key: "k" });
  const [first, second] = await t.h.push([rec({ k: "a" }), rec({ k: "a" })]);
  (first!.value as { enriched: { tags: string[] } }).enriched.tags.push("mutated");
  assert.deepEqual(second!.value, { k: "a", enriched: { tags: ["x"] } });
  const [later] = await t.h.push([rec({ k: "a" })]);
  assert.deepEqual(later!.value, { k: "a", enriched: { tags: ["x"] } });
  assert.equal(t.calls.length, 1);
});

/**
 * Runs `enrich` over `input` in an inline pipeline (so the stage opens the named memory store in
 * this thread, where getMany is wrapped), stopping it after `stopAfterMs` when given.
 */
async function runInline(
  entries: Record<string, unknown>,
  input: StreamRecord<unknown>[],
  fail: Fail,
  stopAfterMs?: number,
) {
  const { store, descriptor } = await storeWith(entries);
  using spy = spyGetMany(fail);
  const out = collect<unknown>();
  const dead = memoryDeadLetters();
  const p = pipeline({ mode: "inline", signals: false, stopTimeoutMs: 300, deadLetter: dead });
  p.from(fromArray(input)).via(enrich(descriptor, { key: "k" })).to(out.sink);
  const running = p.run().then(() => undefined, (error: unknown) => error);
  if (stopAfterMs !== undefined) {
    await new Promise((r) => setTimeout(r, stopAfterMs));
    await p.stop();
  }
  const failure = await running;
  const values = await out.values();
  await out.clear();
  store.clear();
  return { failure, values, calls: spy.calls, dead: dead.entries };
}

Deno.test("enrich() leaves a connection fault to the runtime, which retries the batch; no record is lost", async () => {
  let faults = 3;
  const down = () => faults-- > 0 ? new RetriableError("Cannot read: store is down") : undefined;
  const t = await runInline({ a: 1, b: 2 }, [rec({ k: "a" }), rec({ k: "b" })], down);
  assert.equal(t.failure, undefined);
  assert.deepEqual(t.values, [{ k: "a", enriched: 1 }, { k: "b", enriched: 2 }]);
  assert.equal(t.calls.length, 4, "three faults, then the read that worked");
  assert.deepEqual(t.dead, []);
});

Deno.test("enrich() stops retrying a connection fault when the stage stops: nothing emitted or dead-lettered", async () => {
  const down = () => new RetriableError("Cannot read: store is down");
  const t = await runInline({ a: 1 }, [rec({ k: "a" })], down, 100);
  assert.ok(t.calls.length >= 2, `retried (${t.calls.length} reads)`);
  const calls = t.calls.length;
  await new Promise((r) => setTimeout(r, 200));
  assert.equal(t.calls.length, calls, "no read after the stop");
  assert.deepEqual(t.values, []);
  assert.deepEqual(t.dead, []);
});

Deno.test("enrich() isolates a key the store fails to read: its records are retried, then dead-lettered", async () => {
  const broken = (keys: readonly string[]) =>
    keys.includes("bad") ? new TypeError("Cannot decode entry") : undefined;
  await using t = await setup({ a: 1, bad: 2, c: 3 }, { key: "k" }, broken);
  const out = await t.h.push([rec({ k: "a" }), rec({ k: "bad" }), rec({ k: "c" })]);
  assert.deepEqual(valuesOf(out), [{ k: "a", enriched: 1 }, { k: "c", enriched: 3 }]);
  assert.deepEqual(t.h.dead, [{ record: rec({ k: "bad" }), reason: "Cannot decode entry" }]);
  // The batch read, then a, bad and c one by one, then bad again on each of the 2 retries.
  assert.deepEqual(t.calls, [["a", "bad", "c"], ["a"], ["bad"], ["c"], ["bad"], ["bad"]]);
});

Deno.test("enrich() rejects config mistakes at build time, naming the zod path", () => {
  const memory = { backend: "memory" } as const;
  const cases: [() => unknown, RegExp][] = [
    [
      () => enrich(memory, { into: "x", merge: (v) => v }),
      /config\.merge: cannot be given together with into/,
    ],
    [
      () => enrich(memory, { cache: { maxEntries: 0 } }),
      /config\.cache\.maxEntries: Number must be greater than/,
    ],
    [
      () => enrich(memory, { cache: { maxEntries: 1.5 } }),
      /config\.cache\.maxEntries: Expected integer, received float/,
    ],
    [
      () => enrich(memory, { cache: { negativeTtlMs: -1 } }),
      /config\.cache\.negativeTtlMs: Number must be greater than/,
    ],
    [() => enrich(memory, { cache: { ttlMs: Infinity } }), /config\.cache\.ttlMs/],
    [
      () => enrich(memory, { cache: { maxBytes: 0 } }),
      /config\.cache\.maxBytes: Number must be greater than/,
    ],
    [
      // deno-lint-ignore no-explicit-any
      () => enrich(memory, { cache: { ttl: 5 } as any }),
      /config\.cache: Unrecognized key\(s\) in object: 'ttl'/,
    ],
    // deno-lint-ignore no-explicit-any
    [() => enrich(memory, { onMissing: "skip" as any }), /config\.onMissing: Invalid enum value/],
    [() => enrich(memory, { key: "" }), /config\.key/],
    [() => enrich(memory, { into: "a..b" }), /config\.into: expected a field path/],
    [
      () => enrich(memory, { cacheHeader: "" }),
      /config\.cacheHeader: String must contain at least 1 character/,
    ],
    // deno-lint-ignore no-explicit-any
    [() => enrich({ backend: "sql" } as any), /config\.store\.backend/],
    [() => enrich({ backend: "redis", url: "http://x" }), /config\.store\.url: expected a redis/],
  ];
  for (const [build, message] of cases) {
    assert.throws(
      build,
      (e: Error) => e instanceof ConfigError && message.test(e.message),
      `${message}`,
    );
  }
  assert.throws(
    () => enrich(memory, { cache: { ttlMs: 0 } }, { name: "lookup" }),
    /Cannot configure stage "lookup": config\.cache\.ttlMs: Number must be greater than/,
  );
  const prefix = "sku:";
  assert.throws(
    () => enrich(memory, { key: (v: { id: string }) => prefix + v.id }),
    (e: Error) => e instanceof TypeError && /outer variable prefix/.test(e.message),
  );
});

Deno.test("enrich() gives its worker the store's permissions, unless the stage options say otherwise", () => {
  const redis = enrich({ backend: "redis", url: "redis://:pw@cache:6380" });
  assert.deepEqual(redis.options?.permissions, { net: ["cache:6380"], env: true });
  assert.equal(enrich({ backend: "memory" }).options?.permissions, "none");
  const dir = Deno.makeTempDirSync();
  const kv = enrich({ backend: "kv", path: `${dir}/lookup.kv` });
  assert.deepEqual(kv.options?.permissions, {
    read: [`${dir}/lookup.kv`],
    write: [`${dir}/lookup.kv`],
  });
  Deno.removeSync(dir, { recursive: true });
  const own = enrich({ backend: "memory" }, {}, { permissions: "inherit", parallelism: 2 });
  assert.deepEqual(own.options, { permissions: "inherit", parallelism: 2 });
  assert.equal(own.export, "enrichStage");
});
