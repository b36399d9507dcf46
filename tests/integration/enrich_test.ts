// enrich() against the real Redis that `bash scripts/services.sh up` started: two instances in
// workers, each opening the store from its descriptor with only the permissions storePermissions
// grants (net to the server, env), each with its own cache.
import assert from "node:assert/strict";
import { enrich, RedisStore, type StreamRecord, testPipeline } from "../../mod.ts";
import { services, uniqueName } from "./_services.ts";

/** A Redis store under a fresh key prefix, filled with `entries`; its keys are deleted after. */
async function redisWith(entries: [string, unknown][], layout?: "hash") {
  const url = services().redisUrl;
  const keyPrefix = `${uniqueName("sluice-enrich")}:`;
  const options = { url, keyPrefix, ...(layout ? { layout } : {}) };
  const store = await RedisStore.open(options);
  await store.setMany(entries);
  return {
    descriptor: { backend: "redis" as const, ...options },
    async [Symbol.asyncDispose]() {
      const keys: string[] = [];
      for await (const [key] of store.scan()) keys.push(key);
      for (const key of keys) await store.delete(key);
      await store.close();
    },
  };
}

function tally(output: StreamRecord<unknown>[]): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const r of output) {
    const v = r.headers?.["x-cache"] ?? "none";
    counts[v] = (counts[v] ?? 0) + 1;
  }
  return counts;
}

type Order = { order: number; sku: string };
type Product = { name: string; price: number };

Deno.test("enrich() joins 3 000 orders with products in Redis, 2 instances in workers", async () => {
  const products: [string, Product][] = Array.from(
    { length: 200 },
    (_, i) => [`sku-${i}`, { name: `product ${i}`, price: i + 0.5 }],
  );
  await using redis = await redisWith(products);
  // 250 skus: 200 known, 50 unknown ones (ghosts), each ordered 12 times.
  const input = Array.from({ length: 3000 }, (_, i) => ({
    value: { order: i, sku: `sku-${i % 250}` },
    ts: i,
  }));
  const { output, deadLetters, summary } = await testPipeline(
    (flow) =>
      flow.via(
        enrich<Order, Order & { product: Product | null }>(redis.descriptor, {
          key: "sku",
          into: "product",
          cacheHeader: "x-cache",
        }),
        { parallelism: 2, name: "products" },
      ),
    input,
    { mode: "workers", defaults: { batchSize: 64 } },
  );
  assert.deepEqual(deadLetters, []);
  assert.equal(output.length, 3000);
  const byOrder = new Map(output.map((r) => [r.value.order, r.value]));
  for (let i = 0; i < 3000; i++) {
    const k = i % 250;
    const expected = k < 200 ? { name: `product ${k}`, price: k + 0.5 } : null;
    assert.deepEqual(byOrder.get(i), { order: i, sku: `sku-${k}`, product: expected });
  }
  // Every sku is read at most once per instance: absent ones too (negative caching).
  const { miss = 0, hit = 0 } = tally(output);
  assert.equal(miss + hit, 3000);
  assert.ok(miss >= 250 && miss <= 500, `250 skus, 2 instances: ${miss} reads`);
  assert.equal(summary.stages.products?.in, 3000);
  assert.equal(summary.stages.products?.out, 3000);
});

Deno.test("enrich() merges hash-layout Redis entries and dead-letters unknown keys (workers)", async () => {
  await using redis = await redisWith([
    ["42", { tier: "gold", since: 2019 }],
    ["7", { tier: "basic", since: 2024 }],
  ], "hash");
  type Payment = { user?: number | string; amount: number };
  type Member = { tier: string; since: number };
  const input: StreamRecord<Payment>[] = [
    { key: "a", value: { user: 42, amount: 10 }, ts: 0 },
    { key: "b", value: { user: 7, amount: 3 }, ts: 1 },
    { key: "c", value: { user: 99, amount: 5 }, ts: 2 },
    { key: "d", value: { user: "42", amount: 1 }, ts: 3 },
    { key: "e", value: { amount: 8 }, ts: 4 },
  ];
  const { output, deadLetters } = await testPipeline(
    (flow) =>
      flow.via(
        enrich(redis.descriptor, {
          key: "user",
          onMissing: "deadLetter",
          merge: (v: Payment, found: Member | undefined) => ({
            ...v,
            tier: found!.tier,
            discount: found!.tier === "gold" ? v.amount / 10 : 0,
          }),
        }),
        { parallelism: 2 },
      ),
    input,
    { mode: "workers" },
  );
  const sortedOut = output.map((r) => [r.key, r.value]).sort();
  assert.deepEqual(sortedOut, [
    ["a", { user: 42, amount: 10, tier: "gold", discount: 1 }],
    ["b", { user: 7, amount: 3, tier: "basic", discount: 0 }],
    ["d", { user: "42", amount: 1, tier: "gold", discount: 0.1 }],
  ]);
  const reasons = deadLetters.map((d) => [d.record.key, d.error.message, d.stage]).sort();
  assert.deepEqual(reasons, [
    ["c", 'Cannot enrich record: no entry for key "99"', "enrich"],
    [
      "e",
      'Cannot enrich record: its lookup key (field "user") is undefined, not a string or a finite number',
      "enrich",
    ],
  ]);
});
