// Smoke test: the official MongoDB driver against the MongoDB-wire server (mongo-java-server) that
// `bash scripts/services.sh up` started.
import assert from "node:assert/strict";
import { loadMongodb, type MongoClient } from "../../stores/mongo/_deps.ts";
import { services, uniqueName } from "./_services.ts";

interface Item {
  _id: string;
  n: number;
  tag?: string;
}

async function withDb(fn: (client: MongoClient, dbName: string) => Promise<void>): Promise<void> {
  const { MongoClient } = await loadMongodb();
  const client = new MongoClient(services().mongoUrl, { serverSelectionTimeoutMS: 5_000 });
  const dbName = uniqueName("sluice_smoke").replaceAll("-", "_");
  try {
    await client.connect();
    await fn(client, dbName);
  } finally {
    await client.db(dbName).dropDatabase().catch(() => {});
    await client.close();
  }
}

Deno.test("Mongo smoke: insert, upsert and query documents", async () => {
  await withDb(async (client, dbName) => {
    const items = client.db(dbName).collection<Item>("items");

    const one = await items.insertOne({ _id: "a", n: 1, tag: "x" });
    assert.equal(one.acknowledged, true);
    assert.equal(one.insertedId, "a");
    const many = await items.insertMany([{ _id: "b", n: 2, tag: "y" }, {
      _id: "c",
      n: 3,
      tag: "x",
    }]);
    assert.equal(many.insertedCount, 2);

    // Upsert by key: first call inserts, second updates the same document.
    const up1 = await items.updateOne({ _id: "d" }, { $set: { n: 4, tag: "y" } }, { upsert: true });
    assert.equal(up1.upsertedCount, 1);
    assert.equal(up1.upsertedId, "d");
    const up2 = await items.updateOne({ _id: "d" }, { $set: { n: 40 } }, { upsert: true });
    assert.equal(up2.upsertedCount, 0);
    assert.equal(up2.matchedCount, 1);
    assert.equal(up2.modifiedCount, 1);
    const rep = await items.replaceOne({ _id: "e" }, { n: 5 }, { upsert: true });
    assert.equal(rep.upsertedCount, 1);

    assert.equal(await items.countDocuments(), 5);
    assert.deepEqual(await items.findOne({ _id: "d" }), { _id: "d", n: 40, tag: "y" });
    const xs = await items.find({ tag: "x" }).sort({ n: -1 }).project({ _id: 1, n: 1 }).toArray();
    assert.deepEqual(xs, [{ _id: "c", n: 3 }, { _id: "a", n: 1 }]);
    const big = await items.find({ n: { $gte: 3 } }).sort({ _id: 1 }).toArray();
    assert.deepEqual(big.map((d) => d._id), ["c", "d", "e"]);
    const sum = await items.aggregate<{ _id: string; total: number }>([
      { $match: { tag: { $exists: true } } },
      { $group: { _id: "$tag", total: { $sum: "$n" } } },
      { $sort: { _id: 1 } },
    ]).toArray();
    assert.deepEqual(sum, [{ _id: "x", total: 4 }, { _id: "y", total: 42 }]);
  });
});

Deno.test("Mongo smoke: bulkWrite mixes inserts, upserts, updates and deletes", async () => {
  await withDb(async (client, dbName) => {
    const items = client.db(dbName).collection<Item>("items");
    await items.insertMany([{ _id: "k1", n: 1 }, { _id: "k2", n: 2 }, { _id: "k3", n: 3 }]);

    const res = await items.bulkWrite([
      { insertOne: { document: { _id: "k4", n: 4 } } },
      { updateOne: { filter: { _id: "k1" }, update: { $inc: { n: 10 } } } },
      { updateOne: { filter: { _id: "k5" }, update: { $set: { n: 5 } }, upsert: true } },
      { replaceOne: { filter: { _id: "k6" }, replacement: { n: 6 }, upsert: true } },
      { updateMany: { filter: { n: { $lt: 4 } }, update: { $set: { tag: "small" } } } },
      { deleteOne: { filter: { _id: "k3" } } },
    ], { ordered: true });
    assert.equal(res.insertedCount, 1);
    assert.equal(res.upsertedCount, 2);
    assert.deepEqual(
      Object.values(res.upsertedIds).sort(),
      ["k5", "k6"],
    );
    assert.equal(res.matchedCount, 3); // k1 by updateOne, k2 and k3 by updateMany
    assert.equal(res.modifiedCount, 3);
    assert.equal(res.deletedCount, 1);

    const all = await items.find().sort({ _id: 1 }).toArray();
    assert.deepEqual(all, [
      { _id: "k1", n: 11 },
      { _id: "k2", n: 2, tag: "small" },
      { _id: "k4", n: 4 },
      { _id: "k5", n: 5 },
      { _id: "k6", n: 6 },
    ]);

    // A duplicate key in an unordered bulk write fails that write only.
    await assert.rejects(
      items.bulkWrite([
        { insertOne: { document: { _id: "k1", n: 0 } } },
        { insertOne: { document: { _id: "k7", n: 7 } } },
      ], { ordered: false }),
      (err: Error & { code?: number }) => err.code === 11000,
    );
    assert.equal(await items.countDocuments({ _id: "k7" }), 1);
  });
});

Deno.test("Mongo smoke: a collection change stream sees inserts and updates", async () => {
  await withDb(async (client, dbName) => {
    const items = client.db(dbName).collection<Item>("items");
    await items.insertOne({ _id: "seed", n: 0 });
    // mongo-java-server supports collection-level change streams (oplog on), not db/client ones.
    const stream = items.watch([], { fullDocument: "updateLookup" });
    try {
      const first = stream.next();
      // The stream's cursor opens on the first getMore; give it a moment before writing.
      await new Promise((r) => setTimeout(r, 200));
      await items.insertOne({ _id: "w1", n: 1 });
      await items.updateOne({ _id: "w1" }, { $set: { n: 2 } });
      const ins = await first;
      assert.equal(ins.operationType, "insert");
      assert.ok("fullDocument" in ins);
      assert.deepEqual(ins.fullDocument, { _id: "w1", n: 1 });
      const upd = await stream.next();
      assert.equal(upd.operationType, "update");
      assert.ok("fullDocument" in upd);
      assert.deepEqual(upd.fullDocument, { _id: "w1", n: 2 });
    } finally {
      await stream.close();
    }
  });
});
