// The store conformance suite (tests/_store_conformance.ts) against the real servers: Redis (each
// test under fresh key prefixes) and the MongoDB-wire server (each test in a fresh database).
// Every test deletes what it wrote and closes its clients.
//
// mongo-java-server keeps every inserted or replaced document in its oplog (a plain in-memory
// collection) until it restarts, even after the database is dropped: MongoDB's large values stay
// just over a MiB here, and the 16 MiB limit is checked on the encoded document, not sent.
import assert from "node:assert/strict";
import { MongoStore, RedisStore } from "../../stores/mod.ts";
import { DOCUMENT_LIMIT, encodeDoc } from "../../stores/mongo/_doc_codec.ts";
import { loadMongodb, type MongoClient } from "../../stores/mongo/_deps.ts";
import { loadIoredis, type Redis } from "../../stores/redis/_deps.ts";
import { storeConformance } from "../_store_conformance.ts";
import { services, uniqueName } from "./_services.ts";

const full = {
  increment: true,
  incrementMany: true,
  mergeMany: true,
  reopen: true,
  compression: true,
};

storeConformance("RedisStore", {
  supports: full,
  fixture() {
    const url = services().redisUrl;
    const prefix = `${uniqueName("sluice-conformance")}:`;
    const otherPrefix = `${uniqueName("sluice-conformance")}:`;
    let raw: Promise<Redis> | undefined;
    const client = () =>
      raw ??= loadIoredis().then(({ Redis }) => new Redis(url, { maxRetriesPerRequest: 2 }));
    return Promise.resolve({
      open: (o = {}) => RedisStore.open({ url, keyPrefix: prefix, ...o }),
      openOther: () => RedisStore.open({ url, keyPrefix: otherPrefix }),
      storedBytes: async (key: string) => (await client()).strlen(prefix + key),
      async cleanup() {
        const redis = await client();
        try {
          for (const p of [prefix, otherPrefix]) {
            let cursor = "0";
            do {
              const [next, keys] = await redis.scan(cursor, "MATCH", `${p}*`, "COUNT", 1000);
              if (keys.length > 0) await redis.del(...keys);
              cursor = next;
            } while (cursor !== "0");
          }
        } finally {
          await redis.quit();
        }
      },
    });
  },
});

storeConformance("MongoStore", {
  supports: { ...full, valueLimitBytes: DOCUMENT_LIMIT },
  largeValueBytes: 1.1 * 1024 * 1024,
  fixture() {
    const url = services().mongoUrl;
    const db = uniqueName("sluice_conformance").replaceAll("-", "_");
    let raw: Promise<MongoClient> | undefined;
    const client = () =>
      raw ??= loadMongodb().then(({ MongoClient }) =>
        new MongoClient(url, { serverSelectionTimeoutMS: 5_000 }).connect()
      );
    return Promise.resolve({
      open: (o = {}) => MongoStore.open({ url, db, collection: "store", ...o }),
      openOther: () => MongoStore.open({ url, db, collection: "other" }),
      async storedBytes(key: string) {
        const { BSON } = await loadMongodb();
        const doc = await (await client()).db(db).collection<{ _id: string }>("store")
          .findOne({ _id: key });
        return doc === null ? 0 : BSON.calculateObjectSize(doc);
      },
      async cleanup() {
        const mongo = await client();
        try {
          await mongo.db(db).dropDatabase();
        } finally {
          await mongo.close();
        }
      },
    });
  },
});

Deno.test("MongoStore encodes a value just under 16 MiB into a document within BSON's limit, and refuses a larger one", async () => {
  const driver = await loadMongodb();
  const key = "ключ".repeat(25); // 200 UTF-8 bytes
  const encode = (n: number) =>
    encodeDoc(key, new Uint8Array(n), {
      driver,
      compressAbove: undefined,
      expiresAt: new Date(),
    });
  const doc = await encode(DOCUMENT_LIMIT - 1024);
  const size = driver.BSON.calculateObjectSize({ _id: key, ...doc });
  assert.ok(size <= DOCUMENT_LIMIT && size > DOCUMENT_LIMIT - 2048, `document of ${size} bytes`);
  await assert.rejects(() => encode(DOCUMENT_LIMIT - 256), RangeError);
});
