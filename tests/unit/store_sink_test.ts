import assert from "node:assert/strict";
import {
  ConfigError,
  fromArray,
  memoryDeadLetters,
  pipeline,
  type StreamRecord,
} from "../../actors/mod.ts";
import { map } from "../../processors/map.ts";
import { kvSink, type KvSinkOptions, KvStore } from "../../stores/mod.ts";

type Sale = { id: string; sku: string; qty: number; price: number };

function sales(n: number): StreamRecord<Sale>[] {
  return Array.from({ length: n }, (_, i) => ({
    value: { id: `s${i}`, sku: `sku-${i % 7}`, qty: 1 + (i % 3), price: 2.5 },
    ts: i,
  }));
}

async function tempKv(): Promise<string> {
  return `${await Deno.makeTempDir({ prefix: "sluice-sink-" })}/out/results.kv`;
}

async function dump(path: string): Promise<Record<string, unknown>> {
  await using store = await KvStore.open(path);
  const out: Record<string, unknown> = {};
  for await (const [k, v] of store.scan()) out[k] = v;
  return out;
}

async function run<T>(
  mode: "inline" | "workers",
  input: StreamRecord<T>[],
  options: KvSinkOptions<T>,
  sinkParallelism = 1,
) {
  const dead = memoryDeadLetters();
  const summary = await pipeline({ mode, signals: false, deadLetter: dead, name: "sink-test" })
    .from(fromArray(input), { batchSize: 100 })
    .to(kvSink(options), { parallelism: sinkParallelism, name: "kv" })
    .run();
  return { summary, dead: dead.entries };
}

for (const mode of ["inline", "workers"] as const) {
  Deno.test(`kvSink() "set" writes every record (${mode}) and reads back from KvStore`, async () => {
    const path = await tempKv();
    const { summary } = await run(mode, sales(1000), { path, key: "id" });
    assert.equal(summary.stages.kv?.in, 1000);
    const stored = await dump(path);
    assert.equal(Object.keys(stored).length, 1000);
    assert.deepEqual(stored.s999, { id: "s999", sku: "sku-5", qty: 1, price: 2.5 });
  });

  Deno.test(`kvSink() "increment" sums a field per key (${mode}, 2 sink instances)`, async () => {
    const path = await tempKv();
    await run(mode, sales(2100), { path, key: "sku", mode: "increment", field: "qty" }, 2);
    const expected: Record<string, number> = {};
    for (const { value } of sales(2100)) {
      expected[value.sku] = (expected[value.sku] ?? 0) + value.qty;
    }
    assert.deepEqual(await dump(path), expected);
  });
}

Deno.test(`kvSink() "set" replayed twice over the same input gives the same results`, async () => {
  const path = await tempKv();
  const input = sales(1500);
  // Last write per SKU wins: the stored value is the SKU's last sale, however often replayed.
  const opts: KvSinkOptions<Sale> = { path, key: (v) => v.sku, field: "id" };
  await run("workers", input, opts);
  const first = await dump(path);
  await run("workers", input, opts);
  await run("inline", input, opts);
  assert.deepEqual(await dump(path), first);
  assert.deepEqual(Object.keys(first).length, 7);
  assert.equal(first["sku-0"], "s1498");
});

Deno.test(`kvSink() "merge" shallow-merges objects and is idempotent on replay`, async () => {
  const path = await tempKv();
  const input: StreamRecord<Record<string, unknown>>[] = [
    { key: "u1", value: { name: "ada" }, ts: 0 },
    { key: "u2", value: { name: "bob" }, ts: 1 },
    { key: "u1", value: { plan: "pro" }, ts: 2 },
    { key: "u1", value: { name: "ada l." }, ts: 3 },
  ];
  await run("inline", input, { path, mode: "merge" });
  const first = await dump(path);
  assert.deepEqual(first, { u1: { name: "ada l.", plan: "pro" }, u2: { name: "bob" } });
  await run("workers", input, { path, mode: "merge" });
  assert.deepEqual(await dump(path), first);
});

Deno.test("kvSink() dead-letters records without a key or with a bad value", async () => {
  const path = await tempKv();
  const input: StreamRecord<unknown>[] = [
    { value: { sku: "a", n: 2 }, ts: 0 },
    { value: { n: 3 }, ts: 1 },
    { value: { sku: "a", n: "x" }, ts: 2 },
    { value: { sku: "b", n: 4 }, ts: 3 },
  ];
  const { dead, summary } = await run("inline", input, {
    path,
    key: "sku",
    mode: "increment",
    field: "n",
  });
  assert.deepEqual(await dump(path), { a: 2, b: 4 });
  assert.deepEqual(dead.map((d) => d.error.message).sort(), [
    'Cannot increment by record: field "n" is a string',
    "Cannot write record to store: its key is undefined",
  ]);
  assert.equal(summary.stages.kv?.deadLettered, 2);
});

Deno.test("kvSink() works after a map in workers, with the key from an inline function", async () => {
  const path = await tempKv();
  await pipeline({ mode: "workers", signals: false })
    .from(fromArray(sales(300)))
    .via(map((s: Sale) => ({ sku: s.sku, revenue: s.qty * s.price })))
    .to(kvSink({ path, key: (v) => `rev:${v.sku}`, mode: "increment", field: "revenue" }))
    .run();
  const stored = await dump(path);
  assert.equal(Object.keys(stored).length, 7);
  const total = Object.values(stored).reduce((a: number, b) => a + (b as number), 0);
  assert.equal(total, sales(300).reduce((a, s) => a + s.value.qty * s.value.price, 0));
});

Deno.test("kvSink() grants its worker read and write on the database file only", () => {
  const abs = `${Deno.makeTempDirSync()}/sub/x.kv`;
  assert.deepEqual(kvSink({ path: abs }).options?.permissions, { read: [abs], write: [abs] });
  const dir = `.sluice/test-${crypto.randomUUID()}`;
  const relative = kvSink({ path: `${dir}/y.kv` });
  assert.equal(
    (relative.config as { store: { path: string } }).store.path,
    `${Deno.cwd()}/${dir}/y.kv`,
  );
  assert.ok(Deno.statSync(dir).isDirectory, "the builder creates the directory");
  assert.equal(kvSink({ path: ":memory:" }).options?.permissions, "none");
  Deno.removeSync(dir, { recursive: true });
});

Deno.test("kvSink() rejects bad options at build time", () => {
  assert.throws(
    () => kvSink({ path: ":memory:", mode: "sum" as never }),
    (e: Error) => e instanceof ConfigError && /config\.mode/.test(e.message),
  );
  assert.throws(() => kvSink({ path: ":memory:", ttlMs: -1 }), /config\.ttlMs/);
  const prefix = "rev:";
  assert.throws(
    () => kvSink<{ sku: string }>({ path: ":memory:", key: (v) => prefix + v.sku }),
    /outer variable prefix/,
  );
});
