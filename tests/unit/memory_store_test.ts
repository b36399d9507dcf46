import assert from "node:assert/strict";
import { collect, fromArray, pipeline } from "../../actors/mod.ts";
import { MemoryStore } from "../../stores/memory/mod.ts";
import { storeSink } from "../../stores/store_sink.ts";

async function all<T>(iter: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const x of iter) out.push(x);
  return out;
}

Deno.test("MemoryStore.get() returns copies: changing a value read or written changes nothing stored", async () => {
  await using store = new MemoryStore();
  const value = { list: [1, 2], map: new Map([["a", new Date(1)]]) };
  await store.set("k", value);
  value.list.push(3);
  const read = await store.get<typeof value>("k");
  assert.deepEqual(read, { list: [1, 2], map: new Map([["a", new Date(1)]]) });
  read!.list.push(9);
  assert.deepEqual((await store.get<typeof value>("k"))!.list, [1, 2]);
  await assert.rejects(() => store.set("f", () => 1), DOMException);
});

Deno.test("MemoryStore evicts the least recently used entries past maxEntries", async () => {
  await using store = new MemoryStore({ maxEntries: 3 });
  await store.setMany([["a", 1], ["b", 2], ["c", 3]]);
  await store.get("a"); // "b" is now the least recently used
  await store.set("d", 4);
  assert.deepEqual(await store.getMany(["a", "b", "c", "d"]), [1, undefined, 3, 4]);
  assert.equal(store.size, 3);
});

Deno.test("MemoryStore evicts by bytes past maxBytes and refuses a value larger than the limit", async () => {
  await using store = new MemoryStore({ maxBytes: 50_000 });
  for (let i = 0; i < 10; i++) await store.set(`k${i}`, "x".repeat(10_000));
  // Each value is ~20 kB (two bytes per character counted): only the last two fit.
  const present = (await store.getMany(Array.from({ length: 10 }, (_, i) => `k${i}`)))
    .map((v) => v !== undefined);
  assert.deepEqual(present, [false, false, false, false, false, false, false, false, true, true]);
  await assert.rejects(() => store.set("huge", "y".repeat(30_000)), RangeError);
});

Deno.test("MemoryStore expires entries by TTL on the injected clock; increment keeps the expiry", async () => {
  let now = 1_000;
  await using store = new MemoryStore({ now: () => now, ttlMs: 500 });
  await store.set("default", 1);
  await store.set("own", 1, { ttlMs: 100 });
  await store.set("counter", 1, { ttlMs: 200 });
  now += 99;
  assert.equal(await store.increment("counter", 1), 2);
  assert.deepEqual(await store.getMany(["default", "own", "counter"]), [1, 1, 2]);
  now += 2; // 101 ms after it was written: lru-cache expires an entry once its TTL has passed
  assert.equal(await store.get("own"), undefined);
  now += 100;
  assert.equal(await store.get("counter"), undefined, "increment did not extend the TTL");
  assert.equal(await store.get("default"), 1);
  now += 300;
  assert.equal(await store.get("default"), undefined);
  assert.deepEqual(await all(store.scan()), []);
});

Deno.test("MemoryStore.scan() lists a prefix in UTF-8 key order", async () => {
  await using store = new MemoryStore();
  await store.setMany([["u:b", 2], ["u:a", 1], ["x", 0], ["u:\u{1F600}", 4], ["u:\uFF21", 3]]);
  assert.deepEqual(await all(store.scan("u:")), [
    ["u:a", 1],
    ["u:b", 2],
    ["u:\uFF21", 3],
    ["u:\u{1F600}", 4],
  ]);
});

Deno.test("MemoryStore.incrementMany()/mergeMany() combine repeated keys and check types first", async () => {
  await using store = new MemoryStore();
  await store.set("text", "a");
  await store.incrementMany([["n", 1], ["n", 2.5], ["m", -1]]);
  assert.deepEqual(await store.getMany(["n", "m"]), [3.5, -1]);
  await assert.rejects(() => store.incrementMany([["n", 1], ["text", 1]]), TypeError);
  assert.equal(await store.get("n"), 3.5, "nothing was added when one key failed");
  await store.mergeMany([["u", { a: 1 }], ["u", { b: 2 }], ["text", { c: 3 }]]);
  assert.deepEqual(await store.getMany(["u", "text"]), [{ a: 1, b: 2 }, { c: 3 }]);
});

Deno.test("MemoryStore with a name shares its entries between handles of one thread", async () => {
  const name = `shared-${crypto.randomUUID()}`;
  const a = new MemoryStore({ name, maxEntries: 10 });
  await a.set("k", 1);
  await a.close();
  await assert.rejects(() => a.get("k"), /closed/);
  await using b = new MemoryStore({ name });
  assert.equal(await b.get("k"), 1, "entries outlive a closed handle");
  b.clear();
  await using c = await MemoryStore.open({ name });
  assert.equal(await c.get("k"), undefined);
});

Deno.test("storeSink() into a named memory store: shared inline, private to the worker in workers mode", async () => {
  const records = ["a", "b", "a", "c", "a"].map((w, ts) => ({ key: w, value: 1, ts }));
  for (const mode of ["inline", "workers"] as const) {
    const name = `words-${mode}-${crypto.randomUUID()}`;
    const out = collect();
    await pipeline({ mode, signals: false })
      .from(fromArray(records))
      .to(storeSink({ backend: "memory", name }, { mode: "increment" }))
      .run();
    await out.clear();
    await using words = new MemoryStore({ name });
    const got = await words.getMany(["a", "b", "c"]);
    assert.deepEqual(got, mode === "inline" ? [3, 1, 1] : [undefined, undefined, undefined]);
  }
});
