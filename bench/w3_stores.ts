// Benchmark W3 (stores): sink throughput of mongoSink and redisStreamSink in a Sluice pipeline
// (generator → sink, workers mode) against each driver's own best bulk call on the same records
// in the same run: one `insertMany` / one `bulkWrite` of upserts / one pipelined batch of XADDs.
//
//   bash scripts/services.sh up && deno run -A bench/w3_stores.ts [--count N] [--repeat R]
//
// --count N   records per run (default 100 000)
// --repeat R  runs of each variant, interleaved; the median is reported (default 3)
//
// The Sluice figure is the whole `run()`: worker start, generating the events, batching (512),
// one acknowledged bulk call per batch. The baseline gets the records ready-made in memory and
// makes a single call, so the ratio is the price of streaming with per-batch acknowledgement.
import { pipeline } from "../actors/mod.ts";
import { generator } from "../connectors/generator/mod.ts";
import { mongoSink } from "../connectors/mongo/mod.ts";
import { redisStreamSink } from "../connectors/redis/mod.ts";
import { type Document, loadMongodb } from "../stores/mongo/_deps.ts";
import { loadIoredis } from "../stores/redis/_deps.ts";
import { services } from "../tests/integration/_services.ts";
import { generatedEvents, intFlag, median, timed } from "./_common.ts";

const count = intFlag("count", 100_000);
const repeat = intFlag("repeat", 3);

const { mongoUrl, redisUrl } = services();
const gen = { count, seed: 7, skus: 100 };

const records = await generatedEvents(gen);
const { MongoClient } = await loadMongodb();
const { Redis } = await loadIoredis();
const mongo = new MongoClient(mongoUrl, { serverSelectionTimeoutMS: 5_000 });
await mongo.connect();
const redis = new Redis(redisUrl);
const db = mongo.db(`sluice_bench_w3_${Date.now().toString(36)}`);

interface Variant {
  name: string;
  sluice(target: string): Promise<void>;
  baseline(target: string): Promise<void>;
  prepare(target: string): Promise<void>;
  stored(target: string): Promise<number>;
  drop(target: string): Promise<void>;
}

const mongoVariant = (mode: "insert" | "upsert"): Variant => ({
  name: `MongoDB ${mode}`,
  async prepare(target) {
    await db.collection(target).createIndex({ id: 1 }, { unique: true });
  },
  async sluice(target) {
    await pipeline({ name: "w3-mongo", mode: "workers", signals: false })
      .from(generator(gen))
      .to(mongoSink({ url: mongoUrl, db: db.databaseName, collection: target, mode, key: "id" }))
      .run();
  },
  async baseline(target) {
    const docs = records.map((r) => ({ ...r.value }) as Document);
    const collection = db.collection(target);
    if (mode === "insert") await collection.insertMany(docs);
    else {
      await collection.bulkWrite(
        docs.map((d) => ({
          replaceOne: { filter: { id: d.id }, replacement: d, upsert: true },
        })),
      );
    }
  },
  stored: (target) => db.collection(target).countDocuments(),
  drop: (target) => db.collection(target).drop().then(() => {}, () => {}),
});

const redisVariant: Variant = {
  name: "Redis Streams XADD",
  async prepare() {},
  async sluice(target) {
    await pipeline({ name: "w3-redis", mode: "workers", signals: false })
      .from(generator(gen))
      .to(redisStreamSink({ url: redisUrl, stream: target }))
      .run();
  },
  async baseline(target) {
    const pipe = redis.pipeline();
    for (const r of records) pipe.xadd(target, "*", "data", JSON.stringify(r.value), "key", r.key!);
    await pipe.exec();
  },
  stored: (target) => redis.xlen(target),
  drop: (target) => redis.del(target).then(() => {}),
};

console.log(`W3 stores: ${count} records per run, median of ${repeat}`);
try {
  for (const v of [mongoVariant("insert"), mongoVariant("upsert"), redisVariant]) {
    const times = { sluice: [] as number[], baseline: [] as number[] };
    for (let i = 0; i < repeat; i++) {
      for (const kind of ["sluice", "baseline"] as const) {
        const target = `w3-${kind}-${i}-${Date.now().toString(36)}`;
        await v.prepare(target);
        times[kind].push(await timed(() => v[kind](target)));
        const stored = await v.stored(target);
        await v.drop(target);
        if (stored !== count) throw new Error(`${v.name} ${kind}: ${stored} of ${count} stored`);
      }
    }
    const sluice = count / median(times.sluice);
    const baseline = count / median(times.baseline);
    console.log(
      `${v.name.padEnd(20)} Sluice sink ${Math.round(sluice).toLocaleString("en").padStart(9)} ` +
        `records/s | driver bulk ${Math.round(baseline).toLocaleString("en").padStart(9)} ` +
        `records/s | ratio ${(sluice / baseline).toFixed(2)}`,
    );
  }
} finally {
  await db.dropDatabase().catch(() => {});
  await mongo.close();
  await redis.quit();
}
