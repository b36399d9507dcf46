// enrich() through the runtime in inline and workers modes, reading a Deno KV file (a temp file
// outside the repository, filled before each case and removed after it; a ":memory:" database
// would be private to each worker). Cache hits and misses are counted with the cacheHeader option;
// the batched read (one getMany per batch) is counted in inline mode, where the stage's KvStore
// lives in this thread, by wrapping KvStore.prototype.getMany.
import assert from "node:assert/strict";
import { enrich, type EnrichOptions, type Flow, KvStore, type StreamRecord } from "../../../mod.ts";
import { dead, modeTest, rec, run, sorted, values } from "./_modes.ts";

/** A KV file holding `entries`, its descriptor, and its removal on dispose. */
async function kvWith(entries: Record<string, unknown>) {
  const dir = await Deno.makeTempDir({ prefix: "sluice-enrich-" });
  const path = `${dir}/lookup.kv`;
  {
    await using store = await KvStore.open(path);
    await store.setMany(Object.entries(entries));
  }
  return {
    descriptor: { backend: "kv" as const, path },
    [Symbol.asyncDispose]: () => Deno.remove(dir, { recursive: true }),
  };
}

/** Counts KvStore.getMany calls (and their keys) for the scope. */
function spyKvGetMany(): { calls: string[][] } & Disposable {
  const proto = KvStore.prototype;
  const original = proto.getMany;
  const calls: string[][] = [];
  proto.getMany = function (this: KvStore, keys: readonly string[]) {
    calls.push([...keys]);
    return original.call(this, keys);
  } as typeof original;
  return { calls, [Symbol.dispose]: () => void (proto.getMany = original) };
}

/** How many output records came with each cacheHeader value. */
function tally(output: StreamRecord<unknown>[], header = "x-cache"): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const r of output) {
    const v = r.headers?.[header] ?? "none";
    counts[v] = (counts[v] ?? 0) + 1;
  }
  return counts;
}

const CUSTOMERS = { c1: { name: "Ada", tier: "gold" }, c2: { name: "Linus", tier: "basic" } };
type Order = { order: number; customerId?: unknown };

const ORDERS = [
  rec<Order>({ order: 1, customerId: "c1" }, 10, "o1", { src: "web" }),
  rec<Order>({ order: 2, customerId: "c9" }, 20, "o2"),
  rec<Order>({ order: 3, customerId: "c2" }, 30),
  rec<Order>({ order: 4 }, 40),
  rec<Order>({ order: 5, customerId: "c1" }, 50),
];

modeTest(
  "enrich() joins records with a KV store's entries in input order; onMissing keep/drop/deadLetter",
  async (mode) => {
    await using kv = await kvWith(CUSTOMERS);
    const via = (options: EnrichOptions<Order, Order>) => (f: Flow<Order>) =>
      f.via(
        enrich<Order, Order>(kv.descriptor, { key: "customerId", into: "customer", ...options }),
      );
    const badKey = {
      stage: "enrich",
      message:
        'Cannot enrich record: its lookup key (field "customerId") is undefined, not a string or a finite number',
      attempts: 1,
      record: rec<Order>({ order: 4 }, 40),
    };

    const keep = await run(mode, via({}), ORDERS);
    assert.deepEqual(keep.output, [
      rec({ order: 1, customerId: "c1", customer: CUSTOMERS.c1 }, 10, "o1", { src: "web" }),
      rec({ order: 2, customerId: "c9", customer: null }, 20, "o2"),
      rec({ order: 3, customerId: "c2", customer: CUSTOMERS.c2 }, 30),
      rec({ order: 5, customerId: "c1", customer: CUSTOMERS.c1 }, 50),
    ]);
    assert.deepEqual(dead(keep), [badKey]);
    assert.equal(keep.summary.stages.enrich?.in, 5);
    assert.equal(keep.summary.stages.enrich?.out, 4);

    const drop = await run(mode, via({ onMissing: "drop" }), ORDERS);
    assert.deepEqual(values(drop).map((v) => v.order), [1, 3, 5]);
    assert.deepEqual(dead(drop), [badKey]);
    assert.equal(drop.summary.stages.enrich?.out, 3);

    const deadLetter = await run(mode, via({ onMissing: "deadLetter" }), ORDERS);
    assert.deepEqual(values(deadLetter).map((v) => v.order), [1, 3, 5]);
    assert.deepEqual(dead(deadLetter), [
      {
        stage: "enrich",
        message: 'Cannot enrich record: no entry for key "c9"',
        attempts: 1,
        record: ORDERS[1],
      },
      badKey,
    ]);
    assert.equal(deadLetter.summary.stages.enrich?.deadLettered, 2);
  },
);

modeTest(
  "enrich() reads an absent key once per negativeTtlMs, not once per record",
  async (mode) => {
    await using kv = await kvWith(CUSTOMERS);
    const input = Array.from(
      { length: 40 },
      (_, i) => rec({ id: i % 8 === 0 ? "c1" : "ghost" }, i),
    );
    const small = { defaults: { batchSize: 4 } }; // 10 batches at least
    const flow = (negativeTtlMs: number) => (f: Flow<{ id: string }>) =>
      f.via(enrich(kv.descriptor, { key: "id", cacheHeader: "x-cache", cache: { negativeTtlMs } }));

    const cached = await run(mode, flow(60_000), input, small);
    assert.equal(cached.output.length, 40);
    assert.deepEqual(tally(cached.output), { miss: 2, hit: 38 }, "one read of ghost, one of c1");
    const ghosts = cached.output.filter((r) => (r.value as { id: string }).id === "ghost");
    assert.ok(ghosts.every((r) => (r.value as { enriched: unknown }).enriched === null));

    const uncached = await run(mode, flow(0), input, small);
    const misses = tally(uncached.output).miss ?? 0;
    assert.ok(misses >= 11, `without negative caching ghost is read in every batch (${misses})`);
  },
);

modeTest(
  "enrich() with parallelism 2 enriches every record once; each instance caches its own",
  async (mode) => {
    const entries: Record<string, number> = {};
    for (let k = 0; k < 20; k++) entries[`k${k}`] = k * 10;
    await using kv = await kvWith(entries);
    const input = Array.from({ length: 400 }, (_, i) => rec({ i, k: `k${i % 25}` }, i));
    const result = await run(
      mode,
      (f) =>
        f.via(
          enrich(kv.descriptor, {
            key: "k",
            cacheHeader: "x-cache",
            merge: (v: { i: number; k: string }, found: number | undefined) => ({
              i: v.i,
              price: found ?? -1,
            }),
          }),
          { parallelism: 2 },
        ),
      input,
      { defaults: { batchSize: 16 } },
    );
    assert.deepEqual(
      sorted(values(result)),
      sorted(input.map(({ value: { i } }) => ({ i, price: i % 25 < 20 ? (i % 25) * 10 : -1 }))),
    );
    const { miss = 0, hit = 0 } = tally(result.output);
    assert.equal(miss + hit, 400);
    assert.ok(miss >= 25 && miss <= 50, `each of 25 keys read once per instance at most (${miss})`);
    assert.deepEqual(result.deadLetters, []);
  },
);

Deno.test("enrich() reads the distinct keys a batch misses with one getMany (inline, counted)", async () => {
  await using kv = await kvWith(CUSTOMERS);
  using spy = spyKvGetMany();
  const keys = ["c1", "c2", "c1", "ghost", "c2", "c1", "ghost", "c3"];
  const result = await run(
    "inline",
    (f) => f.via(enrich(kv.descriptor, { key: "id", cacheHeader: "x-cache" })),
    keys.map((id, i) => rec({ id }, i)),
  );
  assert.deepEqual(spy.calls, [["c1", "c2", "ghost", "c3"]]);
  assert.deepEqual(result.output.map((r) => r.headers?.["x-cache"]), [
    "miss",
    "miss",
    "hit",
    "miss",
    "hit",
    "hit",
    "hit",
    "miss",
  ]);
});

Deno.test("enrich() splits a batch of 2 500 distinct missed keys into getMany calls of 1 000 (inline)", async () => {
  await using kv = await kvWith({ k7: "seven", k2499: "last" });
  using spy = spyKvGetMany();
  const input = Array.from({ length: 2500 }, (_, i) => rec({ k: `k${i}` }, i));
  const result = await run(
    "inline",
    (f) => f.via(enrich(kv.descriptor, { key: "k", onMissing: "drop" })),
    input,
    { defaults: { batchSize: 2500 } },
  );
  assert.deepEqual(spy.calls.map((c) => c.length), [1000, 1000, 500]);
  assert.deepEqual(spy.calls.flat(), input.map((r) => r.value.k));
  assert.deepEqual(values(result), [{ k: "k7", enriched: "seven" }, {
    k: "k2499",
    enriched: "last",
  }]);
});
