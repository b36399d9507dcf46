import assert from "node:assert/strict";
import { collect, fromArray, pipeline } from "../../actors/mod.ts";
import { window } from "../../processors/window.ts";
import { KvStore } from "../../stores/kv/mod.ts";

async function tempPath(name = "test.kv"): Promise<string> {
  return `${await Deno.makeTempDir({ prefix: "sluice-kv-" })}/${name}`;
}

async function all<T>(iter: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const x of iter) out.push(x);
  return out;
}

/** Every raw KV entry of a file, to check what chunking leaves behind. */
async function rawKeys(path: string): Promise<Deno.KvKey[]> {
  const kv = await Deno.openKv(path);
  try {
    return (await all(kv.list({ prefix: [] }))).map((e) => e.key);
  } finally {
    kv.close();
  }
}

Deno.test("KvStore.get()/set()/delete() round-trip structured-cloneable values", async () => {
  await using store = await KvStore.open(":memory:");
  const value = {
    n: 1.5,
    s: "text",
    nested: { list: [1, null, "x"], flag: true },
    date: new Date(5),
    map: new Map([["a", 1]]),
    bytes: new Uint8Array([1, 2, 3]),
    big: 12n,
  };
  await store.set("k", value);
  assert.deepEqual(await store.get("k"), value);
  await store.set("null", null);
  assert.equal(await store.get("null"), null);
  assert.equal(await store.get("missing"), undefined);
  await store.delete("k");
  assert.equal(await store.get("k"), undefined);
  await store.delete("never-there");
});

Deno.test("KvStore.getMany() returns values in key order across KV's 10-key reads", async () => {
  await using store = await KvStore.open(":memory:");
  await store.setMany(Array.from({ length: 35 }, (_, i) => [`k${i}`, i * 2] as const));
  const keys = Array.from({ length: 37 }, (_, i) => `k${36 - i}`);
  const got = await store.getMany<number>(keys);
  assert.deepEqual(
    got,
    keys.map((k) => {
      const i = Number(k.slice(1));
      return i < 35 ? i * 2 : undefined;
    }),
  );
  assert.deepEqual(await store.getMany([]), []);
});

Deno.test("KvStore.setMany() writes batches over KV's 1000-mutation and 800 KiB limits", async () => {
  await using store = await KvStore.open(":memory:");
  await store.setMany(Array.from({ length: 3000 }, (_, i) => [`n${i}`, i] as const));
  // 40 values of ~40 KB: 1.6 MB, more than two atomic operations hold.
  const wide = Array.from({ length: 40 }, (_, i) => [`w${i}`, "é".repeat(20_000) + i] as const);
  await store.setMany(wide);
  assert.equal(await store.get("n2999"), 2999);
  assert.equal(await store.get("w39"), "é".repeat(20_000) + 39);
  assert.equal((await all(store.scan("n"))).length, 3000);
  // The last value for a repeated key wins.
  await store.setMany([["dup", 1], ["dup", 2]]);
  assert.equal(await store.get("dup"), 2);
});

Deno.test("KvStore.scan() lists a prefix in key order and nothing of other namespaces", async () => {
  const path = await tempPath();
  await using a = await KvStore.open(path);
  await using b = await KvStore.open(path, { namespace: ["user"] });
  await a.setMany([["user:2", 2], ["user:1", 1], ["userx", 3], ["order:1", 4], ["use", 5]]);
  await b.set("user:9", 9);
  assert.deepEqual(await all(a.scan("user:")), [["user:1", 1], ["user:2", 2]]);
  assert.deepEqual((await all(a.scan())).map(([k]) => k), [
    "order:1",
    "use",
    "user:1",
    "user:2",
    "userx",
  ]);
  assert.deepEqual(await all(b.scan()), [["user:9", 9]]);
  assert.deepEqual(await all(a.scan("zzz")), []);
});

Deno.test("KvStore handles unicode keys and values", async () => {
  await using store = await KvStore.open(":memory:");
  const keys = ["café", "日本語", "emoji:🎉", "nul\u0000byte", "ключ"];
  await store.setMany(keys.map((k, i) => [k, { k, i }] as const));
  for (const [i, k] of keys.entries()) assert.deepEqual(await store.get(k), { k, i });
  assert.deepEqual(await all(store.scan("emoji:")), [["emoji:🎉", { k: "emoji:🎉", i: 2 }]]);
  assert.equal((await all(store.scan())).length, keys.length);
});

Deno.test("KvStore.increment() adds atomically, also under concurrent writers", async () => {
  const path = await tempPath();
  await using a = await KvStore.open(path);
  await using b = await KvStore.open(path);
  assert.equal(await a.increment("n", 1.5), 1.5);
  await Promise.all(
    Array.from({ length: 40 }, (_, i) => (i % 2 ? a : b).increment("n", 1)),
  );
  assert.equal(await a.get("n"), 41.5);
  assert.equal(await b.increment("n", -41.5), 0);
  await a.set("s", "text");
  await assert.rejects(() => a.increment("s", 1), /Cannot increment key "s": its value is not/);
  await assert.rejects(() => a.increment("n", NaN), TypeError);
});

Deno.test("KvStore.updateMany() merges values read-check-write", async () => {
  await using store = await KvStore.open(":memory:");
  await store.set("u1", { name: "ada" });
  const out = await store.updateMany<Record<string, unknown>>(
    ["u1", "u2", "u1"],
    (old, key) => ({ ...old, key }),
  );
  assert.equal(out.size, 2);
  assert.deepEqual(await store.get("u1"), { name: "ada", key: "u1" });
  assert.deepEqual(await store.get("u2"), { key: "u2" });
});

Deno.test("KvStore.set() accepts a TTL and rejects a bad one", async () => {
  await using store = await KvStore.open(":memory:");
  await store.set("session", { user: "ada" }, { ttlMs: 60_000 });
  await store.setMany([["a", 1], ["b", 2]], { ttlMs: 1 });
  assert.deepEqual(await store.get("session"), { user: "ada" });
  await assert.rejects(() => store.set("x", 1, { ttlMs: 0 }), RangeError);
  await assert.rejects(() => store.set("x", 1, { ttlMs: -5 }), RangeError);
});

Deno.test("KvStore splits values over 64 KiB into chunks and reassembles them", async () => {
  const path = await tempPath();
  await using store = await KvStore.open(path);
  const big = {
    text: "x".repeat(300_000),
    unicode: "ü€".repeat(50_000),
    bytes: new Uint8Array(1_000_000).map((_, i) => i % 251),
  };
  await store.set("big", big);
  assert.deepEqual(await store.get("big"), big);
  assert.deepEqual(await store.getMany(["big", "none"]), [big, undefined]);
  assert.deepEqual(await all(store.scan("b")), [["big", big]]);
  const chunkKeys = () => rawKeys(path).then((ks) => ks.filter((k) => k[0] === "sluice.chunks"));
  const first = (await chunkKeys()).length;
  assert.ok(first >= 25, `expected chunks, found ${first}`);
  // Overwriting replaces the chunks; a small value leaves none behind; so does delete.
  await store.set("big", { text: "y".repeat(200_000) });
  assert.equal((await store.get<{ text: string }>("big"))?.text.length, 200_000);
  const second = (await chunkKeys()).length;
  assert.ok(second > 0 && second < first, `chunks: ${first} then ${second}`);
  await store.setMany([["big", "small"], ["other", 1]]);
  assert.equal(await store.get("big"), "small");
  assert.equal((await chunkKeys()).length, 0);
  await store.set("big2", "z".repeat(100_000));
  await store.delete("big2");
  assert.equal(await store.get("big2"), undefined);
  assert.equal((await chunkKeys()).length, 0);
});

Deno.test("KvStore.increment() and updateMany() work on chunked values", async () => {
  await using store = await KvStore.open(":memory:");
  await store.set("doc", { pad: "p".repeat(100_000), n: 1 });
  await store.updateMany<{ pad: string; n: number }>(["doc"], (old) => ({ ...old!, n: 2 }));
  const doc = await store.get<{ pad: string; n: number }>("doc");
  assert.equal(doc?.n, 2);
  assert.equal(doc?.pad.length, 100_000);
});

Deno.test("KvStore persists across close and reopen of a file", async () => {
  const path = await tempPath("nested/dir/state.kv");
  const store = await KvStore.open(path);
  await store.setMany([["a", { v: 1 }], ["big", "b".repeat(150_000)]]);
  await store.increment("count", 3);
  await store.close();
  await store.close(); // twice is fine
  await assert.rejects(() => store.get("a"), /Cannot use KvStore .*: it is closed/);
  await using again = await KvStore.open(path);
  assert.deepEqual(await again.get("a"), { v: 1 });
  assert.equal(await again.get("count"), 3);
  assert.equal((await again.get<string>("big"))?.length, 150_000);
});

Deno.test("KvStore rejects bad keys and values with clear errors", async () => {
  await using store = await KvStore.open(":memory:");
  await assert.rejects(() => store.set(42 as unknown as string, 1), /expected a string/);
  await assert.rejects(() => store.set("k".repeat(3000), 1), RangeError);
  await assert.rejects(() => store.set("f", () => 1), /could not be cloned|DataCloneError/i);
  await assert.rejects(
    () => KvStore.open(":memory:", { namespace: [1 as unknown as string] }),
    /namespace is not an array of strings/,
  );
});

Deno.test("KvStore.open() fails clearly when the file cannot be opened", async () => {
  const file = await Deno.makeTempFile();
  await assert.rejects(
    () => KvStore.open(`${file}/under-a-file.kv`),
    (e: Error & { code?: string }) =>
      e.code === "E_STORE" && /Cannot open KvStore at/.test(e.message),
  );
});

Deno.test("KvStore read-check-write stays correct when another writer changes a key", async () => {
  const path = await tempPath();
  await using a = await KvStore.open(path);
  await using b = await KvStore.open(path);
  assert.equal(await a.increment("n", 1), 1);
  await b.set("n", 100); // a's remembered versionstamp is now stale
  assert.equal(await a.increment("n", 1), 101);
  await a.set("n", 50);
  assert.equal(await a.increment("n", 1), 51);
  await b.delete("n");
  assert.equal(await a.increment("n", 1), 1);
  // Values handed out by updateMany are copies: changing them changes nothing stored.
  const out = await a.updateMany<{ tags: string[] }>(["doc"], () => ({ tags: ["x"] }));
  out.get("doc")!.tags.push("mutated");
  await a.updateMany<{ tags: string[] }>(["doc"], (old) => {
    old!.tags.push("y");
    return old!;
  });
  assert.deepEqual(await b.get("doc"), { tags: ["x", "y"] });
});

Deno.test("KvStore serves as a pipeline's state backend for checkpoints", async () => {
  await using state = await KvStore.open(await tempPath(), { namespace: ["state"] });
  const input = Array.from(
    { length: 3000 },
    (_, i) => ({ key: `k${i % 30}`, value: 1, ts: i * 10 }),
  );
  const out = collect<{ n: number }>();
  await pipeline({ mode: "inline", signals: false, state, checkpointMs: 20, name: "ckpt" })
    .from(fromArray(input))
    .via(window({ type: "tumbling", sizeMs: 1000, aggregate: { n: { op: "count" } } }))
    .to(out.sink)
    .run();
  const counts = await out.values();
  await out.clear();
  assert.equal(counts.reduce((a, v) => a + v.n, 0), 3000);
  assert.ok((await all(state.scan())).length > 0, "no checkpoint was stored");
});

Deno.test("KvStore.open() without --unstable-kv fails with a clear SluiceError", async () => {
  const mod = new URL("../../stores/kv/mod.ts", import.meta.url).href;
  const code = `import { KvStore } from "${mod}";
try { await KvStore.open(":memory:"); } catch (e) { console.log(e.name, e.code, e.message); }`;
  const { stdout } = await new Deno.Command(Deno.execPath(), {
    args: ["eval", "--no-config", code],
    cwd: await Deno.makeTempDir(),
    env: { NO_COLOR: "1" },
    stdout: "piped",
    stderr: "piped",
  }).output();
  assert.match(
    new TextDecoder().decode(stdout),
    /^SluiceError E_UNSTABLE Cannot open KvStore: Deno KV is not enabled \(run with --unstable-kv/,
  );
});
