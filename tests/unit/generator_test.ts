import assert from "node:assert/strict";
import {
  collect,
  ConfigError,
  pipeline,
  type StageContext,
  type StreamRecord,
} from "../../actors/mod.ts";
import { KeyedState } from "../../actors/keyed_state.ts";
import {
  type EcommerceEvent,
  generator,
  type GeneratorOptions,
  generatorSource,
} from "../../connectors/generator/mod.ts";
import { filter } from "../../processors/filter.ts";

async function run(
  mode: "inline" | "workers",
  config: GeneratorOptions,
  options: { parallelism?: number } = {},
): Promise<EcommerceEvent[]> {
  const out = collect<EcommerceEvent>();
  try {
    await pipeline({ mode, signals: false })
      .from(generator(config, options))
      .to(out.sink)
      .run();
    return (await out.values()).sort((a, b) => a.id - b.id);
  } finally {
    await out.clear();
  }
}

/** Opens an instance directly, to drive `pull` by hand. */
async function open(
  config: GeneratorOptions,
  instance = 0,
  parallelism = 1,
  resumeFrom?: unknown,
) {
  const abort = new AbortController();
  const ctx: StageContext<EcommerceEvent> = {
    resumeFrom,
    stage: "generator",
    instance,
    parallelism,
    partitions: 64,
    watermark: -Infinity,
    signal: abort.signal,
    now: () => Date.now(),
    emit: () => {},
    emitTo: () => {},
    deadLetter: () => {},
    keyed: <V>() => new KeyedState<V>(64),
    partitionOf: () => 0,
  };
  const parsed = generatorSource.config.safeParse(config);
  if (!parsed.success) throw new TypeError("bad config");
  const source = await generatorSource.open(parsed.data, ctx);
  const pull = async (max: number) => {
    const batch = await source.pull({ max, signal: abort.signal }, ctx);
    return batch?.records ?? null;
  };
  const pullBatch = (max: number) => source.pull({ max, signal: abort.signal }, ctx);
  return { pull, pullBatch, abort };
}

Deno.test("generator() resumed from a batch's position goes on right after that batch", async () => {
  for (const [instance, parallelism] of [[0, 1], [1, 3]]) {
    const first = await open({ count: 100, seed: 5 }, instance, parallelism);
    const a = await first.pullBatch(7);
    const b = await first.pullBatch(7);
    const resumed = await open({ count: 100, seed: 5 }, instance, parallelism, a!.position);
    assert.deepEqual(await resumed.pull(7), b!.records, `instance ${instance} of ${parallelism}`);
    first.abort.abort();
    resumed.abort.abort();
  }
});

Deno.test("generator() with the same seed gives the same events; another seed differs", async () => {
  const a = await run("inline", { count: 2000, seed: 7 });
  const b = await run("inline", { count: 2000, seed: 7 });
  const c = await run("inline", { count: 2000, seed: 8 });
  assert.deepEqual(a, b);
  assert.notDeepEqual(a, c);
});

Deno.test("generator() keeps making the events it made before: seed 2024 starts the same", async () => {
  // Made by the generator as it was before it drew its numbers by index (c778faa): a seed must
  // name the same events from one version to the next.
  const { pull } = await open({ count: 5, seed: 2024, skus: 100 });
  assert.deepEqual((await pull(5))!.map((r) => r.value), [
    {
      id: 0,
      userId: "user-610",
      sku: "sku-0078",
      type: "view",
      price: 17906,
      qty: 4,
      ts: 1704067200000,
    },
    {
      id: 1,
      userId: "user-490",
      sku: "sku-0031",
      type: "cart",
      price: 869,
      qty: 5,
      ts: 1704067200001,
    },
    {
      id: 2,
      userId: "user-55",
      sku: "sku-0016",
      type: "view",
      price: 12480,
      qty: 4,
      ts: 1704067200002,
    },
    {
      id: 3,
      userId: "user-117",
      sku: "sku-0052",
      type: "cart",
      price: 13539,
      qty: 5,
      ts: 1704067200003,
    },
    {
      id: 4,
      userId: "user-377",
      sku: "sku-0004",
      type: "cart",
      price: 14776,
      qty: 1,
      ts: 1704067200004,
    },
  ]);
});

Deno.test("generator() gives the same events inline and in workers, at any parallelism", async () => {
  const config = { count: 3000, seed: 11, skus: 20 };
  const inline = await run("inline", config);
  const workers = await run("workers", config);
  const parallel = await run("workers", config, { parallelism: 2 });
  assert.deepEqual(workers, inline);
  assert.deepEqual(parallel, inline);
});

Deno.test("generator() respects count and makes well-formed events keyed by sku", async () => {
  const out = collect<EcommerceEvent>();
  await pipeline({ mode: "inline", signals: false })
    .from(generator({ count: 1234, seed: 1, skus: ["a", "b", "c"], users: 10, startTs: 1000 }))
    .to(out.sink)
    .run();
  const records: StreamRecord<EcommerceEvent>[] = await out.records();
  await out.clear();
  assert.equal(records.length, 1234);
  assert.deepEqual(records.map((r) => r.value.id).sort((x, y) => x - y), [...Array(1234).keys()]);
  const prices = new Map<string, number>();
  for (const { key, value: e, ts } of records) {
    assert.equal(key, e.sku);
    assert.equal(ts, e.ts);
    assert.equal(e.ts, 1000 + e.id);
    assert.ok(["a", "b", "c"].includes(e.sku));
    assert.ok(["view", "cart", "purchase"].includes(e.type));
    assert.match(e.userId, /^user-\d$/);
    assert.ok(Number.isInteger(e.price) && e.price > 0);
    assert.ok(Number.isInteger(e.qty) && e.qty >= 1 && e.qty <= 5);
    assert.equal(prices.get(e.sku) ?? e.price, e.price, "price is fixed per sku");
    prices.set(e.sku, e.price);
  }
  const purchases = records.filter((r) => r.value.type === "purchase").length;
  assert.ok(purchases > 1234 * 0.28 && purchases < 1234 * 0.39, `${purchases} purchases`);
});

Deno.test("generator() names users alike with and without its name table", async () => {
  // Up to 65 536 users are named from a table, more are formatted per event.
  for (const users of [65_536, 65_537]) {
    const first = await open({ count: 5000, seed: 7, users });
    const names = (await first.pull(5000))!.map((r) => r.value.userId);
    const ids = names.map((n) => Number(/^user-(\d+)$/.exec(n)?.[1] ?? NaN));
    assert.ok(ids.every((id) => Number.isInteger(id) && id >= 0 && id < users), `${users}`);
    assert.ok(new Set(ids).size > 4500, "users spread over the range");
    assert.ok(ids.some((id) => id > 60_000), "high ids are drawn");
    const again = await open({ count: 5000, seed: 7, users });
    assert.deepEqual((await again.pull(5000))!.map((r) => r.value.userId), names);
  }
});

Deno.test("generator() makes at most max events per pull and none unless pulled", async () => {
  const { pull } = await open({ count: 25, seed: 3 });
  assert.equal((await pull(10))?.length, 10);
  assert.equal((await pull(10))?.length, 10);
  assert.equal((await pull(10))?.length, 5);
  assert.equal(await pull(10), null);
});

Deno.test("generator() instances share the ids between them", async () => {
  const ids: number[] = [];
  for (const instance of [0, 1, 2]) {
    const { pull } = await open({ count: 100, seed: 3 }, instance, 3);
    for (let batch = await pull(7); batch; batch = await pull(7)) {
      ids.push(...batch.map((r) => r.value.id));
    }
  }
  assert.deepEqual(ids.sort((a, b) => a - b), [...Array(100).keys()]);
});

for (const mode of ["inline", "workers"] as const) {
  Deno.test(`generator() with ratePerSec keeps roughly to the rate (${mode})`, async () => {
    const count = 300, ratePerSec = 1000;
    const out = collect<EcommerceEvent>();
    const p = pipeline({ mode, signals: false })
      .from(generator({ count, seed: 5, ratePerSec }))
      .via(filter((e: EcommerceEvent) => e.qty > 0))
      .to(out.sink);
    const started = performance.now();
    await p.run();
    const seconds = (performance.now() - started) / 1000;
    assert.equal((await out.values()).length, count);
    await out.clear();
    const rate = count / seconds;
    // 300 events at 1000/s take ≥ 0.3 s (workers add start-up time: a generous lower bound).
    assert.ok(rate <= ratePerSec * 1.25, `rate ${rate.toFixed(0)}/s is above ${ratePerSec}/s`);
    assert.ok(rate >= ratePerSec * 0.25, `rate ${rate.toFixed(0)}/s is far below ${ratePerSec}/s`);
  });
}

Deno.test("generator() pull wakes and ends when the signal aborts during a rate sleep", async () => {
  const { pull, abort } = await open({ count: 10, seed: 1, ratePerSec: 0.5 });
  assert.equal((await pull(10))?.length, 1);
  const started = performance.now();
  setTimeout(() => abort.abort(), 50);
  assert.equal(await pull(10), null);
  assert.ok(performance.now() - started < 1000);
});

Deno.test("generator() rejects a bad config at build time, naming the zod path", () => {
  assert.throws(
    () => generator({ count: -1, seed: 1 }),
    (e: unknown) => e instanceof ConfigError && /config\.count/.test(e.message),
  );
  assert.throws(
    () => generator({ count: 1, seed: 1, extra: true } as GeneratorOptions),
    ConfigError,
  );
  assert.throws(
    () => generator({ count: 1, seed: 1, mix: { view: 0, cart: 0, purchase: 0 } }),
    /config\.mix/,
  );
});
