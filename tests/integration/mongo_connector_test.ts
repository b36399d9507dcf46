// mongoSink and mongoSource against the real MongoDB-wire server (mongo-java-server) that
// `bash scripts/services.sh up` started: idempotent upserts, dead-lettered duplicates,
// incremental reads that resume after a restart, and change streams.
import assert from "node:assert/strict";
import { collect, fromArray, memoryDeadLetters, pipeline, type StreamRecord } from "../../mod.ts";
import { mongoSink, mongoSource } from "../../connectors/mongo/mod.ts";
import { type Document, loadMongodb, type MongoClient } from "../../stores/mongo/_deps.ts";
import { services, uniqueName } from "./_services.ts";

type Mode = "inline" | "workers";

/** Runs `fn` with a connected client and a fresh database, dropped afterwards. */
async function withDb(fn: (client: MongoClient, db: string) => Promise<void>): Promise<void> {
  const { MongoClient } = await loadMongodb();
  const client = new MongoClient(services().mongoUrl, { serverSelectionTimeoutMS: 5_000 });
  const db = uniqueName("sluice_mc").replaceAll("-", "_");
  try {
    await client.connect();
    await fn(client, db);
  } finally {
    await client.db(db).dropDatabase().catch(() => {});
    await client.close();
  }
}

/** Polls `check` until it holds, failing after `ms` with `what`. */
async function waitFor(check: () => Promise<boolean>, ms: number, what: string): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`Timed out after ${ms} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

function orders(n: number, keys: number): StreamRecord<{ sku: string; n: number }>[] {
  return Array.from({ length: n }, (_, i) => ({
    key: `order-${i % keys}`,
    value: { sku: `sku-${i % 7}`, n: i },
    ts: i,
  }));
}

for (const mode of ["inline", "workers"] as Mode[]) {
  Deno.test(`mongoSink() upserts by key: the same input twice leaves the same documents (${mode})`, async () => {
    await withDb(async (client, db) => {
      const input = orders(2_000, 500); // every key 4 times: the last write of a key wins
      const run = () =>
        pipeline({ mode, signals: false })
          .from(fromArray(input, { batchSize: 300 }))
          .to(mongoSink({ url: services().mongoUrl, db, collection: "orders" }))
          .run();
      const items = client.db(db).collection<Document>("orders");
      const first = await run();
      const after1 = await items.find().sort({ _id: 1 }).toArray();
      await run();
      const after2 = await items.find().sort({ _id: 1 }).toArray();
      assert.equal(after1.length, 500);
      assert.deepEqual(after2, after1);
      assert.deepEqual(await items.findOne({ _id: "order-3" } as Document), {
        _id: "order-3",
        sku: `sku-${1503 % 7}`,
        n: 1503,
      });
      assert.equal(first.stages["mongo-sink"]?.deadLettered, 0);
    });
  });
}

for (const ordered of [true, false]) {
  Deno.test(`mongoSink() in insert mode dead-letters a duplicate key and writes the others (ordered: ${ordered})`, async () => {
    await withDb(async (client, db) => {
      const items = client.db(db).collection<Document>("items");
      await items.insertOne({ _id: "k5", n: -1 } as Document);
      const dead = memoryDeadLetters();
      const input: StreamRecord<unknown>[] = Array.from({ length: 10 }, (_, i) => ({
        key: `k${i}`,
        value: { n: i },
        ts: i,
        headers: { line: String(i) },
      }));
      input.push({ key: "k10", value: "not a document", ts: 10 });
      const summary = await pipeline({ mode: "workers", signals: false, deadLetter: dead })
        .from(fromArray(input))
        .to(
          mongoSink({ url: services().mongoUrl, db, collection: "items", mode: "insert", ordered }),
        )
        .run();
      const docs = await items.find().sort({ n: 1 }).toArray();
      assert.deepEqual(
        docs.map((d) => d._id),
        ["k5", "k0", "k1", "k2", "k3", "k4", "k6", "k7", "k8", "k9"],
      );
      assert.equal((await items.findOne({ _id: "k5" } as Document))?.n, -1);
      assert.equal(dead.entries.length, 2);
      const dup = dead.entries.find((e) => e.record.key === "k5")!;
      assert.equal(dup.error.code, "E_MONGO_11000");
      assert.match(dup.error.message, /duplicate key/);
      assert.equal(dup.record.headers?.line, "5");
      assert.equal(dup.stage, "mongo-sink");
      const bad = dead.entries.find((e) => e.record.key === "k10")!;
      assert.match(bad.error.message, /value is string, not an object/);
      assert.equal(summary.stages["mongo-sink"]?.deadLettered, 2);
    });
  });
}

Deno.test("mongoSink() fails with a ConfigError naming the path of a bad option", () => {
  assert.throws(
    () =>
      mongoSink({ url: services().mongoUrl, db: "x", collection: "y", mode: "merge" as "insert" }),
    /config\.mode/,
  );
});

/** Inserts documents `from ≤ i < to` with `seq` = ⌊i / 3⌋, so three documents share each value. */
async function insertSeq(client: MongoClient, db: string, from: number, to: number) {
  const docs = [];
  for (let i = from; i < to; i++) docs.push({ _id: i, seq: Math.floor(i / 3), at: new Date(i) });
  if (docs.length > 0) await client.db(db).collection("events").insertMany(docs as Document[]);
}

function readEvents(db: string, out: ReturnType<typeof collect<Document>>, follow: boolean) {
  return pipeline({ mode: "workers", signals: false })
    .from(mongoSource({
      url: services().mongoUrl,
      db,
      collection: "events",
      field: "seq",
      tsField: "at",
      batchSize: 50,
      pollMs: 50,
      follow,
      resumeId: "events-reader",
    }))
    .to(out.sink);
}

Deno.test("mongoSource() reads by a growing field in workers mode and resumes after a restart without loss", async () => {
  await withDb(async (client, db) => {
    const out = collect<Document>();
    try {
      await insertSeq(client, db, 0, 400);
      // First run: follows the collection while more documents arrive, then stops.
      const p1 = readEvents(db, out, true);
      const run1 = p1.run();
      await waitFor(async () => (await out.values()).length >= 400, 20_000, "first 400");
      await insertSeq(client, db, 400, 700);
      await waitFor(async () => (await out.values()).length >= 700, 20_000, "700");
      await p1.stop();
      await run1;
      // Written while no pipeline runs: the restarted source starts after the saved position.
      await insertSeq(client, db, 700, 1000);
      const saved = await client.db(db).collection("sluice_positions").findOne(
        { _id: "events-reader" } as Document,
      );
      assert.deepEqual(saved?.position, { v: 233, id: 699 });
      await readEvents(db, out, false).run();
      const records = await out.records();
      const ids = records.map((r) => r.value._id as number);
      assert.deepEqual(
        [...new Set(ids)].sort((a, b) => a - b),
        Array.from({ length: 1000 }, (_, i) => i),
      );
      assert.equal(ids.length, 1000, "a graceful stop saves the last position: no duplicates");
      assert.deepEqual(ids, [...ids].sort((a, b) => a - b), "read in (seq, _id) order");
      const r5 = records.find((r) => r.value._id === 5)!;
      assert.equal(r5.key, "5");
      assert.equal(r5.ts, 5);
      assert.equal(r5.headers?.["mongo.collection"], "events");
    } finally {
      await out.clear();
    }
  });
});

Deno.test("mongoSource() starts after `after` and applies the filter", async () => {
  await withDb(async (client, db) => {
    await insertSeq(client, db, 0, 60);
    const out = collect<Document>();
    try {
      await pipeline({ mode: "inline", signals: false })
        .from(mongoSource({
          url: services().mongoUrl,
          db,
          collection: "events",
          field: "at",
          after: { $date: new Date(29).toISOString() },
          filter: { seq: { $lt: 15 } },
          follow: false,
          batchSize: 4,
        }))
        .to(out.sink)
        .run();
      const values = await out.values();
      assert.deepEqual(values.map((v) => v._id), Array.from({ length: 15 }, (_, i) => 30 + i));
    } finally {
      await out.clear();
    }
  });
});

Deno.test("mongoSource() with changeStream picks up inserts, updates and deletes, and resumes after a restart", async () => {
  await withDb(async (client, db) => {
    const items = client.db(db).collection<Document>("live");
    await items.insertOne({ _id: "seed" } as Document);
    const out = collect<Document | null>();
    const watch = () =>
      pipeline({ mode: "workers", signals: false })
        .from(mongoSource({
          url: services().mongoUrl,
          db,
          collection: "live",
          changeStream: true,
          pollMs: 50,
          resumeId: "live-watch",
        }))
        .to(out.sink);
    try {
      const p1 = watch();
      const run1 = p1.run();
      // The stream starts when the source opened: write probes until one shows up.
      let probes = 0;
      await waitFor(
        async () => {
          await items.insertOne({ _id: `probe-${probes++}` } as Document);
          return (await out.values()).length > 0;
        },
        20_000,
        "the first change",
      );
      for (let i = 0; i < 50; i++) await items.insertOne({ _id: `d${i}`, n: i } as Document);
      await items.updateOne({ _id: "d7" } as Document, { $set: { n: 700 } });
      await items.deleteOne({ _id: "d8" } as Document);
      await waitFor(
        async () => (await out.records()).some((r) => r.headers?.["mongo.op"] === "delete"),
        20_000,
        "the delete",
      );
      await p1.stop();
      await run1;
      // Changes while stopped are read after the saved resume token.
      for (let i = 50; i < 60; i++) await items.insertOne({ _id: `d${i}`, n: i } as Document);
      const p2 = watch();
      const run2 = p2.run();
      await waitFor(async () => (await out.values()).some((v) => v?._id === "d59"), 20_000, "d59");
      await p2.stop();
      await run2;
      const records = (await out.records()).filter((r) => !r.key?.startsWith("probe-"));
      const inserts = records.filter((r) => r.headers?.["mongo.op"] === "insert");
      assert.deepEqual(inserts.map((r) => r.key), Array.from({ length: 60 }, (_, i) => `d${i}`));
      const update = records.find((r) => r.headers?.["mongo.op"] === "update");
      assert.deepEqual(update?.value, { _id: "d7", n: 700 });
      assert.equal(update?.key, "d7");
      const del = records.find((r) => r.headers?.["mongo.op"] === "delete");
      assert.equal(del?.key, "d8");
      assert.equal(del?.value, null);
    } finally {
      await out.clear();
    }
  });
});
