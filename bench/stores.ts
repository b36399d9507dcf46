// Benchmark (stores): batched `storeSink` throughput into Redis and MongoDB against a per-record
// loop with the same driver, on the same records, in the same run; printed as records/s and ratio.
// Then `enrich` from a Redis store at a ~90 % cache hit rate, against a per-record lookup loop and
// an in-process loop with the same cache policy.
//
//   bash scripts/services.sh up && deno run -A bench/stores.ts [--count N] [--repeat R]
//
// --count N   records per run (default 20 000; the enrich part uses 5× as many)
// --repeat R  runs of each side, interleaved; the median is reported (default 3)
//
// Sluice: generator → storeSink (workers mode, one worker per stage), the whole `run()`, worker
// start included. Baseline: the same records, ready-made in memory, written one awaited call at a
// time (`SET` / `INCRBYFLOAT` with ioredis, `replaceOne` / `updateOne $inc` upserts with the
// mongodb driver) — the hand-rolled loop a pipeline replaces. Every side must leave the same
// entries in the server (checked), or the benchmark exits with status 1.
import { pipeline, stage } from "../actors/mod.ts";
import { type EcommerceEvent, generator } from "../connectors/generator/mod.ts";
import { enrich } from "../processors/enrich.ts";
import { map } from "../processors/map.ts";
import { storeSink } from "../stores/store_sink.ts";
import { openStore, type StoreDescriptor } from "../stores/open_store.ts";
import { loadMongodb } from "../stores/mongo/_deps.ts";
import { loadIoredis } from "../stores/redis/_deps.ts";
import { services } from "../tests/integration/_services.ts";
import { generatedEvents, intFlag, median, timed } from "./_common.ts";

const count = intFlag("count", 20_000);
const repeat = intFlag("repeat", 3);

const { mongoUrl, redisUrl } = services();
const gen = { count, seed: 11, skus: 100 };
const run36 = Date.now().toString(36);

const records = await generatedEvents(gen);
let failed = false;
const { MongoClient } = await loadMongodb();
const { Redis } = await loadIoredis();
const mongo = new MongoClient(mongoUrl, { serverSelectionTimeoutMS: 5_000 });
await mongo.connect();
const redis = new Redis(redisUrl);
const dbName = `sluice_bench_stores_${run36}`;
const db = mongo.db(dbName);

/** What every side must have left in the store: a checksum over the entries it wrote. */
interface Written {
  entries: number;
  sum: number;
}

/** Expected result of a mode over `records`. */
function expected(mode: "set" | "increment"): Written {
  if (mode === "set") {
    return { entries: records.length, sum: records.reduce((s, r) => s + r.value.id, 0) };
  }
  const skus = new Set(records.map((r) => r.value.sku));
  return { entries: skus.size, sum: records.reduce((s, r) => s + r.value.price * r.value.qty, 0) };
}

interface Variant {
  name: string;
  mode: "set" | "increment";
  descriptor(target: string): StoreDescriptor;
  baseline(target: string): Promise<void>;
}

const redisVariant = (mode: "set" | "increment"): Variant => ({
  name: `Redis ${mode}`,
  mode,
  descriptor: (target) => ({ backend: "redis", url: redisUrl, keyPrefix: `${target}:` }),
  async baseline(target) {
    for (const r of records) {
      if (mode === "set") await redis.set(`${target}:${r.value.id}`, JSON.stringify(r.value));
      else await redis.incrbyfloat(`${target}:${r.value.sku}`, r.value.price * r.value.qty);
    }
  },
});

const mongoVariant = (mode: "set" | "increment"): Variant => ({
  name: `MongoDB ${mode}`,
  mode,
  descriptor: (target) => ({ backend: "mongo", url: mongoUrl, db: dbName, collection: target }),
  async baseline(target) {
    const collection = db.collection<{ _id: string }>(target);
    for (const r of records) {
      if (mode === "set") {
        await collection.replaceOne({ _id: String(r.value.id) }, { value: r.value }, {
          upsert: true,
        });
      } else {
        await collection.updateOne({ _id: r.value.sku }, {
          $inc: { value: r.value.price * r.value.qty },
        }, { upsert: true });
      }
    }
  },
});

async function sluice(v: Variant, target: string): Promise<void> {
  const p = pipeline({ name: `bench-stores-${target}`, mode: "workers", signals: false });
  const flow = p.from(generator(gen));
  if (v.mode === "set") flow.to(storeSink(v.descriptor(target), { key: "id", mode: "set" }));
  else {
    flow.via(map((e: EcommerceEvent) => ({ sku: e.sku, revenue: e.price * e.qty })))
      .to(storeSink(v.descriptor(target), { key: "sku", mode: "increment", field: "revenue" }));
  }
  await p.run();
}

/** Reads back what a side wrote: the baselines' raw entries, or Sluice's through its store. */
async function written(v: Variant, target: string, baseline: boolean): Promise<Written> {
  let entries = 0, sum = 0;
  const add = (value: unknown) => {
    entries++;
    sum += v.mode === "set" ? (value as EcommerceEvent).id : Number(value);
  };
  const redisSide = v.name.startsWith("Redis");
  if (!baseline) {
    const store = await openStore(v.descriptor(target));
    try {
      for await (const [, value] of store.scan()) add(value);
    } finally {
      await store.close();
    }
  } else if (redisSide) {
    const keys = await redis.keys(`${target}:*`);
    for (let i = 0; i < keys.length; i += 1000) {
      for (const raw of await redis.mget(...keys.slice(i, i + 1000))) {
        add(v.mode === "set" ? JSON.parse(raw!) : raw);
      }
    }
  } else {
    for await (const doc of db.collection(target).find()) add(doc.value);
  }
  if (redisSide) {
    const keys = await redis.keys(`${target}:*`);
    for (let i = 0; i < keys.length; i += 1000) await redis.del(...keys.slice(i, i + 1000));
  } else await db.collection(target).drop().catch(() => {});
  return { entries, sum };
}

/**
 * `enrich` joining events with product entries by SKU from a Redis store: 10 000 SKUs over
 * 5 × count events, so about 90 % of lookups hit the cache of the single enrich instance.
 */
async function enrichBench(): Promise<void> {
  const n = count * 5;
  const skus = Array.from({ length: 10_000 }, (_, i) => `sku-${String(i).padStart(4, "0")}`);
  const descriptor: StoreDescriptor = {
    backend: "redis",
    url: redisUrl,
    keyPrefix: `be_${run36}:`,
  };
  const store = await openStore(descriptor);
  const input = await generatedEvents({ count: n, seed: 5, skus });
  const path = await Deno.makeTempFile({ prefix: "sluice-bench-enrich-" });
  try {
    await store.setMany(skus.map((sku, i) => [sku, { sku, name: `Product ${i}`, shelf: i % 40 }]));
    const sluiceSeconds = await timed(() =>
      pipeline({ name: `bench-enrich-${run36}`, mode: "workers", signals: false })
        .from(generator({ count: n, seed: 5, skus }))
        .via(enrich(descriptor, { key: "sku", into: "product", cacheHeader: "cache" }))
        .to(
          stage(new URL("./_stages.ts", import.meta.url), { path }, {
            kind: "sink",
            export: "enrichCount",
          }),
          { permissions: { write: [path] } },
        )
        .run()
    );
    const counts = JSON.parse(await Deno.readTextFile(path)) as {
      records: number;
      hits: number;
      misses: number;
      withoutProduct: number;
    };
    if (counts.records !== n || counts.withoutProduct !== 0) {
      console.error(
        `FAIL: enrich emitted ${counts.records} of ${n} records, ` +
          `${counts.withoutProduct} without their product`,
      );
      failed = true;
    }
    // The hand-rolled ways: one awaited GET per record; and the same cache policy in process
    // (a Map of the entries read, one getMany of the missing keys per 512 records).
    let found = 0;
    const perRecord = await timed(async () => {
      for (const r of input) if (await store.get(r.value.sku) !== undefined) found++;
    });
    const cached = await timed(async () => {
      const cache = new Map<string, unknown>();
      for (let i = 0; i < input.length; i += 512) {
        const batch = input.slice(i, i + 512);
        const missing = [...new Set(batch.map((r) => r.value.sku))].filter((k) => !cache.has(k));
        const values = await store.getMany(missing);
        missing.forEach((k, j) => cache.set(k, values[j]));
        for (const r of batch) if (cache.get(r.value.sku) !== undefined) found++;
      }
    });
    if (found !== 2 * n) {
      console.error(`FAIL: the baselines found ${found} of ${2 * n} products`);
      failed = true;
    }
    const rate = (s: number) => Math.round(n / s).toLocaleString("en").padStart(9);
    const hitRate = counts.hits / Math.max(1, counts.hits + counts.misses);
    console.log(
      `enrich (Redis, ${n.toLocaleString("en")} events, ${
        skus.length.toLocaleString("en")
      } skus): ` +
        `Sluice ${rate(sluiceSeconds)} rec/s at a ${
          (hitRate * 100).toFixed(1)
        } % cache hit rate | ` +
        `per-record GET loop ${rate(perRecord)} rec/s, ratio ${
          (perRecord / sluiceSeconds).toFixed(1)
        }× | ` +
        `in-process cached loop ${rate(cached)} rec/s, ratio ${
          (cached / sluiceSeconds).toFixed(2)
        }×`,
    );
  } finally {
    for await (const [key] of store.scan()) await store.delete(key);
    await store.close();
    await Deno.remove(path);
  }
}

function same(a: Written, b: Written): boolean {
  return a.entries === b.entries && Math.abs(a.sum - b.sum) <= 1e-6 * Math.max(1, Math.abs(b.sum));
}

console.log(
  `Stores: ${count.toLocaleString("en")} records per run, median of ${repeat}; ` +
    `storeSink (batches of 512, workers) vs a per-record loop with the same driver`,
);
try {
  for (
    const v of [
      redisVariant("set"),
      redisVariant("increment"),
      mongoVariant("set"),
      mongoVariant("increment"),
    ]
  ) {
    const want = expected(v.mode);
    const times = { sluice: [] as number[], baseline: [] as number[] };
    for (let i = 0; i < repeat; i++) {
      for (const side of ["sluice", "baseline"] as const) {
        const target = `bs_${side}_${i}_${run36}`;
        times[side].push(
          await timed(() => side === "sluice" ? sluice(v, target) : v.baseline(target)),
        );
        const got = await written(v, target, side === "baseline");
        if (!same(got, want)) {
          console.error(
            `FAIL: ${v.name} ${side} wrote ${got.entries} entries (sum ${got.sum}), ` +
              `expected ${want.entries} (sum ${want.sum})`,
          );
          failed = true;
        }
      }
    }
    const s = count / median(times.sluice);
    const b = count / median(times.baseline);
    console.log(
      `${v.name.padEnd(18)} storeSink ${Math.round(s).toLocaleString("en").padStart(9)} rec/s | ` +
        `per-record loop ${Math.round(b).toLocaleString("en").padStart(8)} rec/s | ratio ${
          (s / b).toFixed(1)
        }×`,
    );
  }
  await enrichBench();
} finally {
  await db.dropDatabase().catch(() => {});
  await mongo.close();
  await redis.quit();
}
if (failed) Deno.exit(1);
