// storeSink() into the real Redis and MongoDB servers through a workers-mode pipeline: "set",
// "merge" and "increment" write what the records say, replays of "set" and "merge" leave the same
// entries, and records without a key are dead-lettered. Each test uses a fresh key prefix or
// database and removes it afterwards.
import assert from "node:assert/strict";
import { fromArray, memoryDeadLetters, pipeline, type StreamRecord } from "../../actors/mod.ts";
import {
  MongoStore,
  RedisStore,
  type Store,
  type StoreDescriptor,
  storeSink,
  type StoreSinkOptions,
} from "../../stores/mod.ts";
import { loadMongodb } from "../../stores/mongo/_deps.ts";
import { services, uniqueName } from "./_services.ts";

/** A fresh place in one backend: the sink's descriptor, a reader, and the clean-up. */
interface Target {
  descriptor: StoreDescriptor;
  open(): Promise<Store & AsyncDisposable>;
  cleanup(): Promise<void>;
}

const backends: { name: string; target(): Target }[] = [
  {
    name: "Redis",
    target() {
      const url = services().redisUrl;
      const keyPrefix = `${uniqueName("sluice-store-sink")}:`;
      const open = () => RedisStore.open({ url, keyPrefix });
      return {
        descriptor: { backend: "redis", url, keyPrefix },
        open,
        async cleanup() {
          await using store = await open();
          for await (const [key] of store.scan()) await store.delete(key);
        },
      };
    },
  },
  {
    name: "MongoDB",
    target() {
      const url = services().mongoUrl;
      const db = uniqueName("sluice_store_sink").replaceAll("-", "_");
      return {
        descriptor: { backend: "mongo", url, db, collection: "sink" },
        open: () => MongoStore.open({ url, db, collection: "sink" }),
        async cleanup() {
          const { MongoClient } = await loadMongodb();
          const client = new MongoClient(url, { serverSelectionTimeoutMS: 5_000 });
          try {
            await client.connect();
            await client.db(db).dropDatabase();
          } finally {
            await client.close();
          }
        },
      };
    },
  },
];

type Sale = { id: string; sku: string; qty: number; at: Date };

function sales(n: number): StreamRecord<Sale>[] {
  return Array.from({ length: n }, (_, i) => ({
    value: { id: `s${i}`, sku: `sku-${i % 7}`, qty: 1 + (i % 3), at: new Date(1_000 * i) },
    ts: i,
  }));
}

/** Runs input → storeSink in workers mode. */
async function run<T>(
  target: Target,
  input: StreamRecord<T>[],
  options: StoreSinkOptions<T>,
  parallelism = 1,
  batchSize = 100,
) {
  const dead = memoryDeadLetters();
  const summary = await pipeline({ mode: "workers", signals: false, deadLetter: dead })
    .from(fromArray(input), { batchSize })
    .to(storeSink(target.descriptor, options), { parallelism, name: "sink" })
    .run();
  return { summary, dead: dead.entries };
}

/** Every entry of the target, by key. */
async function dump(target: Target): Promise<Record<string, unknown>> {
  await using store = await target.open();
  const out: Record<string, unknown> = {};
  for await (const [key, value] of store.scan()) out[key] = value;
  return out;
}

/** Runs `fn` with a fresh target, cleaned up afterwards. */
async function withTarget(make: () => Target, fn: (t: Target) => Promise<void>): Promise<void> {
  const target = make();
  try {
    await fn(target);
  } finally {
    await target.cleanup();
  }
}

for (const { name, target } of backends) {
  Deno.test(`storeSink() "set" into ${name} writes every record in workers mode; a replay writes the same`, async () => {
    await withTarget(target, async (t) => {
      const input = sales(1_000);
      const { summary } = await run(t, input, { key: "id" });
      assert.equal(summary.stages.sink?.in, 1_000);
      const first = await dump(t);
      assert.equal(Object.keys(first).length, 1_000);
      assert.deepEqual(first.s999, { id: "s999", sku: "sku-5", qty: 1, at: new Date(999_000) });
      await run(t, input, { key: "id" });
      assert.deepEqual(await dump(t), first);
    });
  });

  Deno.test(`storeSink() "set" into ${name}: the last record of a key wins, also on replay`, async () => {
    await withTarget(target, async (t) => {
      const input = sales(1_500);
      const options: StoreSinkOptions<Sale> = { key: (v) => `last:${v.sku}`, field: "id" };
      await run(t, input, options);
      const first = await dump(t);
      assert.equal(Object.keys(first).length, 7);
      assert.equal(first["last:sku-0"], "s1498");
      await run(t, input, options);
      assert.deepEqual(await dump(t), first);
    });
  });

  Deno.test(`storeSink() "merge" into ${name} shallow-merges objects in record order; a replay changes nothing`, async () => {
    await withTarget(target, async (t) => {
      await using store = await t.open();
      await store.set("u3", { name: "cy", plan: "free" }); // written before the pipeline
      const input: StreamRecord<Record<string, unknown>>[] = [
        { key: "u1", value: { name: "ada" }, ts: 0 },
        { key: "u2", value: { name: "bob" }, ts: 1 },
        { key: "u1", value: { plan: "pro" }, ts: 2 },
        { key: "u1", value: { name: "ada l.", since: new Date(5) }, ts: 3 },
        { key: "u3", value: { plan: "pro" }, ts: 4 },
      ];
      await run(t, input, { mode: "merge" });
      const first = await dump(t);
      assert.deepEqual(first, {
        u1: { name: "ada l.", plan: "pro", since: new Date(5) },
        u2: { name: "bob" },
        u3: { name: "cy", plan: "pro" },
      });
      await run(t, input, { mode: "merge" });
      assert.deepEqual(await dump(t), first);
    });
  });

  Deno.test(`storeSink() "merge" into ${name} from 2 sink instances loses no field`, async () => {
    await withTarget(target, async (t) => {
      // Every record adds its own field to one of 3 documents. The records have no key of their
      // own, so batches go round-robin to both instances, which merge into the same documents
      // concurrently: each document must still end up with all of its fields.
      const input = Array.from({ length: 600 }, (_, i) => ({
        value: { doc: `doc${i % 3}`, fields: { [`f${i}`]: i } },
        ts: i,
      }));
      const options: StoreSinkOptions<(typeof input)[number]["value"]> = {
        key: "doc",
        mode: "merge",
        field: "fields",
      };
      const { summary, dead } = await run(t, input, options, 2, 5); // 120 small batches
      assert.deepEqual(dead.map((d) => d.error.message), []);
      assert.equal(summary.stages.sink?.in, 600);
      const docs = await dump(t) as Record<string, Record<string, number>>;
      assert.deepEqual(Object.keys(docs).sort(), ["doc0", "doc1", "doc2"]);
      for (const j of [0, 1, 2]) {
        const expected: Record<string, number> = {};
        for (let i = j; i < 600; i += 3) expected[`f${i}`] = i;
        assert.deepEqual(docs[`doc${j}`], expected);
      }
    });
  });

  Deno.test(`storeSink() "increment" into ${name} sums a field per key exactly (2 sink instances)`, async () => {
    await withTarget(target, async (t) => {
      await using store = await t.open();
      await store.set("sku-0", 1_000); // counts on from an existing value
      const input = sales(2_100);
      await run(t, input, { key: "sku", mode: "increment", field: "qty" }, 2);
      const expected: Record<string, number> = {};
      for (const { value } of input) expected[value.sku] = (expected[value.sku] ?? 0) + value.qty;
      expected["sku-0"]! += 1_000;
      assert.deepEqual(await dump(t), expected);
    });
  });

  Deno.test(`storeSink() into ${name} dead-letters records without a key or number, writing the rest`, async () => {
    await withTarget(target, async (t) => {
      const input: StreamRecord<unknown>[] = [
        { value: { sku: "a", n: 2 }, ts: 0 },
        { value: { n: 3 }, ts: 1 },
        { value: { sku: "a", n: "x" }, ts: 2 },
        { value: { sku: "b", n: 4.5 }, ts: 3 },
      ];
      const { dead, summary } = await run(t, input, { key: "sku", mode: "increment", field: "n" });
      assert.deepEqual(await dump(t), { a: 2, b: 4.5 });
      assert.deepEqual(dead.map((d) => d.error.message).sort(), [
        'Cannot increment by record: field "n" is a string',
        "Cannot write record to store: its key is undefined",
      ]);
      assert.equal(summary.stages.sink?.deadLettered, 2);
    });
  });
}
