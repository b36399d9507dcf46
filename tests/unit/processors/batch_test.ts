import assert from "node:assert/strict";
import { batch, batchStage } from "../../../processors/batch.ts";
import { harness, rawRef, rec } from "./_harness.ts";

Deno.test("batch() emits one record per size records, with the latest ts", async () => {
  const h = await harness(batch<number>({ size: 3 }));
  const out = await h.push([rec(1, 5), rec(2, 9), rec(3, 7), rec(4, 1)]);
  assert.deepEqual(out, [{ value: [1, 2, 3], ts: 9 }]);
  assert.deepEqual(await h.flush(), [{ value: [4], ts: 1 }]);
  assert.deepEqual(await h.flush(), []);
});

Deno.test("batch() keeps the key only when every record in the batch shares it", async () => {
  const h = await harness(batch<number>({ size: 2 }));
  const out = await h.push([rec(1, 0, "a"), rec(2, 0, "a"), rec(3, 0, "a"), rec(4, 0, "b")]);
  assert.deepEqual(out, [{ key: "a", value: [1, 2], ts: 0 }, { value: [3, 4], ts: 0 }]);
});

Deno.test("batch() emits a partial batch once its first record waited timeoutMs", async () => {
  const h = await harness(batch<number>({ size: 100, timeoutMs: 50 }), { now: 10 });
  await h.push([rec(1)]);
  h.now = 40;
  await h.push([rec(2)]);
  assert.deepEqual(await h.tick(59), []);
  assert.deepEqual(await h.tick(60), [{ value: [1, 2], ts: 0 }]);
  assert.deepEqual(await h.tick(1000), []);
});

Deno.test("batch() perKey batches each key apart and flushes partial ones", async () => {
  const h = await harness(batch<number>({ size: 2, perKey: true, timeoutMs: 100 }));
  const out = await h.push([rec(1, 0, "a"), rec(2, 0, "b"), rec(3, 0, "a"), rec(4, 0)]);
  assert.deepEqual(out, [{ key: "a", value: [1, 3], ts: 0 }]);
  const due = await h.tick(100);
  assert.deepEqual(due.map((r) => [r.key ?? "", r.value]).sort(), [["", [4]], ["b", [2]]]);
  assert.deepEqual(await h.flush(), []);
});

Deno.test("batch() keeps NaN and null values and a 100 kB key; empty input emits nothing", async () => {
  const key = "b".repeat(100_000);
  const h = await harness(batch<number | null>({ size: 2 }));
  assert.deepEqual(await h.flush(), []);
  const [out] = await h.push([rec(NaN, 0, key), rec(null, 0, key)]);
  assert.deepEqual(out?.value, [NaN, null]);
  assert.equal(out?.key, key);
});

Deno.test("batch() restored from a snapshot into a fresh instance emits the same batches", async () => {
  for (const perKey of [false, true]) {
    const ref = batch<number>({ size: 3, perKey });
    const a = await harness(ref);
    await a.push([rec(1, 0, "k"), rec(2, 0, "k")]);
    const b = await harness(ref, { restore: a.snapshot() });
    assert.deepEqual(await b.push([rec(3, 0, "k")]), await a.push([rec(3, 0, "k")]));
    assert.deepEqual(b.emitted, [{ key: "k", value: [1, 2, 3], ts: 0 }]);
  }
});

Deno.test("batch() rejects bad configs with a ConfigError naming the zod path", async () => {
  assert.throws(() => batch({ size: 0 }), {
    name: "ConfigError",
    message: /^Cannot configure stage "batch": config\.size: Number must be greater than 0$/,
  });
  assert.throws(() => batch({ timeoutMs: "1s" as never }), {
    message: /config\.timeoutMs: Expected number, received string/,
  });
  assert.throws(() => batch({ max: 1 } as never), {
    message: /Unrecognized key\(s\) in object: 'max'/,
  });
  await assert.rejects(() => harness(rawRef("batch.ts", "batchStage", { perKey: 1 })), {
    message: /config\.perKey: /,
  });
  assert.equal(batchStage.stateful, true);
});
