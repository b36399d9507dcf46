import assert from "node:assert/strict";
import { aggregate, aggregateStage } from "../../../processors/aggregate.ts";
import { harness, rawRef, rec } from "./_harness.ts";

type Order = { total?: unknown; sku?: string | null };

Deno.test("aggregate() emits the updated running aggregate of the key for every record", async () => {
  const h = await harness(
    aggregate<Order>({ revenue: { op: "sum", field: "total" }, orders: { op: "count" } }),
  );
  const out = await h.push([
    rec({ total: 5 }, 1, "a"),
    rec({ total: 7 }, 2, "b"),
    rec({ total: 1 }, 3, "a"),
  ]);
  assert.deepEqual(out, [
    { key: "a", ts: 1, value: { key: "a", revenue: 5, orders: 1 } },
    { key: "b", ts: 2, value: { key: "b", revenue: 7, orders: 1 } },
    { key: "a", ts: 3, value: { key: "a", revenue: 6, orders: 2 } },
  ]);
});

Deno.test("aggregate() computes count, sum, avg, min, max, distinctCount and topK", async () => {
  const h = await harness(aggregate<Order>({
    n: { op: "count" },
    withSku: { op: "count", field: "sku" },
    sum: { op: "sum", field: "total" },
    avg: { op: "avg", field: "total" },
    min: { op: "min", field: "total" },
    max: { op: "max", field: "total" },
    skus: { op: "distinctCount", field: "sku" },
    top: { op: "topK", field: "sku", k: 2 },
    topRevenue: { op: "topK", field: "sku", k: 1, weight: "total" },
  }));
  await h.push([
    rec({ total: 4, sku: "a" }),
    rec({ total: 10, sku: "b" }),
    rec({ total: 1, sku: "a" }),
    rec({ total: 3, sku: "c" }),
    rec({ total: 2, sku: null }),
  ]);
  assert.deepEqual(h.emitted.at(-1)?.value, {
    n: 5,
    withSku: 4,
    sum: 20,
    avg: 4,
    min: 1,
    max: 10,
    skus: 3,
    top: [{ value: "a", count: 2 }, { value: "b", count: 1 }],
    topRevenue: [{ value: "b", count: 10 }],
  });
});

Deno.test("aggregate() skips NaN, null, Infinity and numeric strings so they never poison sums", async () => {
  const h = await harness(aggregate<Order>({
    sum: { op: "sum", field: "total" },
    avg: { op: "avg", field: "total" },
    min: { op: "min", field: "total" },
    n: { op: "count", field: "total" },
  }));
  await h.push([
    rec({ total: NaN }),
    rec({ total: null }),
    rec({ total: "4" }),
    rec({ total: -Infinity }),
    rec({}),
  ]);
  assert.deepEqual(h.emitted.at(-1)?.value, { sum: 0, avg: null, min: null, n: 3 });
  await h.push([rec({ total: 6 })]);
  assert.deepEqual(h.emitted.at(-1)?.value, { sum: 6, avg: 6, min: 6, n: 4 });
  assert.equal(h.dead.length, 0);
});

Deno.test("aggregate() distinctCount and topK tell NaN, null, Infinity and 1 vs 1n apart in values", async () => {
  const h = await harness(aggregate<{ p: unknown }>({
    distinct: { op: "distinctCount", field: "p" },
    top: { op: "topK", field: "p", k: 10 },
  }));
  await h.push([
    rec({ p: { x: NaN } }),
    rec({ p: { x: null } }),
    rec({ p: { x: Infinity } }),
    rec({ p: { x: NaN } }),
    rec({ p: [undefined] }),
    rec({ p: [null] }),
    rec({ p: 1 }),
    rec({ p: 1n }),
    rec({ p: "1" }),
  ]);
  const last = h.emitted.at(-1)?.value as { distinct: number; top: { count: number }[] };
  assert.equal(last.distinct, 8);
  assert.deepEqual(last.top.map((e) => e.count), [2, 1, 1, 1, 1, 1, 1, 1]);
  assert.deepEqual(last.top[0], { value: { x: NaN }, count: 2 });
});

Deno.test("aggregate() runs user reducers and dead-letters a record whose reducer throws", async () => {
  const h = await harness(aggregate<{ x: number }>({
    n: { op: "count" },
    product: { op: "reduce", fn: (acc: number, v: { x: number }) => acc * v.x, initial: 1 },
  }));
  await h.push([
    rec({ x: 2 }, 0, "k"),
    rec(null as unknown as { x: number }, 0, "k"),
    rec({ x: 3 }, 0, "k"),
  ]);
  assert.equal(h.dead.length, 1);
  assert.deepEqual(h.emitted.map((r) => [r.value.n, r.value.product]), [[1, 2], [2, 6]]);
});

Deno.test("aggregate() keeps records without a key in one aggregate and a 100 kB key in another", async () => {
  const key = "g".repeat(100_000);
  const h = await harness(aggregate({ n: { op: "count" } }));
  const out = await h.push([rec(1), rec(1, 0, key), rec(1)]);
  assert.deepEqual(out.map((r) => [r.key?.length, r.value.n]), [[undefined, 1], [100_000, 1], [
    undefined,
    2,
  ]]);
  assert.equal("key" in (out[0]?.value ?? {}), false);
});

Deno.test("aggregate() on empty input emits nothing", async () => {
  const h = await harness(aggregate({ n: { op: "count" } }));
  assert.deepEqual(await h.push([]), []);
  assert.deepEqual(await h.flush(), []);
});

Deno.test("aggregate() restored from a snapshot into a fresh instance continues the same aggregates", async () => {
  const ref = aggregate<Order>({
    sum: { op: "sum", field: "total" },
    top: { op: "topK", field: "sku", k: 3 },
    distinct: { op: "distinctCount", field: "sku" },
  });
  const a = await harness(ref);
  await a.push([rec({ total: 1, sku: "x" }, 0, "k"), rec({ total: 2, sku: "y" }, 0, "k")]);
  const b = await harness(ref, { restore: a.snapshot() });
  const more = [rec({ total: 4, sku: "x" }, 0, "k")];
  assert.deepEqual(await b.push(more), await a.push(more));
  assert.deepEqual(b.emitted[0]?.value, {
    key: "k",
    sum: 7,
    top: [{ value: "x", count: 2 }, { value: "y", count: 1 }],
    distinct: 2,
  });
});

Deno.test("aggregate() rejects bad configs with a ConfigError naming the zod path", async () => {
  assert.throws(() => aggregate({ revenue: { op: "sum" } as never }), {
    name: "ConfigError",
    message: /^Cannot configure stage "aggregate": config\.aggregate\.revenue\.field: Required/,
  });
  assert.throws(() => aggregate({ key: { op: "count" } }), {
    message: /config\.aggregate: The name "key" is reserved/,
  });
  assert.throws(() => aggregate({ t: { op: "topK", field: "a", k: 0 } }), {
    message: /config\.aggregate\.t\.k: Number must be greater than/,
  });
  assert.throws(() => aggregate({ t: { op: "count", extra: 1 } as never }), {
    message: /Unrecognized key\(s\) in object: 'extra'/,
  });
  assert.throws(
    () => aggregate({ r: { op: "reduce", fn: (a: number) => a, initial: undefined as never } }),
    {
      message: /config\.aggregate\.r\.initial: /,
    },
  );
  const outer = 1;
  assert.throws(
    () => aggregate({ r: { op: "reduce", fn: (a: number) => a + outer, initial: 0 } }),
    TypeError,
  );
  await assert.rejects(
    () =>
      harness(
        rawRef("aggregate.ts", "aggregateStage", {
          aggregate: { n: { op: "count" } },
          emit: "batch",
        }),
      ),
    {
      message: /Unrecognized key\(s\) in object: 'emit'/,
    },
  );
  assert.equal(aggregateStage.stateful, true);
});
