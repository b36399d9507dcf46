import assert from "node:assert/strict";
import { dedupe, dedupeStage } from "../../../processors/dedupe.ts";
import { harness, rawRef, rec } from "./_harness.ts";

Deno.test("dedupe() drops records with a key seen within the TTL in event time", async () => {
  const h = await harness(dedupe({ ttlMs: 1000 }));
  const out = await h.push([
    rec(1, 0, "a"),
    rec(2, 500, "a"),
    rec(3, 999, "a"),
    rec(4, 1000, "a"),
    rec(5, 10, "b"),
  ]);
  assert.deepEqual(out.map((r) => r.value), [1, 4, 5]);
});

Deno.test("dedupe() treats out-of-order duplicates within the TTL as duplicates", async () => {
  const h = await harness(dedupe({ ttlMs: 100 }));
  const out = await h.push([rec(1, 500, "a"), rec(2, 450, "a"), rec(3, 399, "a")]);
  assert.deepEqual(out.map((r) => r.value), [1, 3]);
});

Deno.test("dedupe() by field or by whole value, with object keys in any order", async () => {
  const byField = await harness(dedupe({ by: { field: "order.id" }, ttlMs: 1000 }));
  const out = await byField.push([
    rec({ order: { id: 1 }, n: 1 }),
    rec({ order: { id: 1 }, n: 2 }),
    rec({ order: { id: "1" }, n: 3 }),
  ]);
  assert.deepEqual(out.map((r) => (r.value as { n: number }).n), [1, 3]);
  const byValue = await harness(dedupe({ by: "value", ttlMs: 1000 }));
  const values = await byValue.push([
    rec({ a: 1, b: 2 }),
    rec({ b: 2, a: 1 }),
    rec({ a: 1, b: 3 }),
  ]);
  assert.equal(values.length, 2);
});

Deno.test("dedupe() passes records without a key or with a null field; NaN matches NaN", async () => {
  const h = await harness(dedupe({ by: { field: "id" }, ttlMs: 1000 }));
  const out = await h.push([
    rec({}),
    rec({}),
    rec({ id: null }),
    rec({ id: null }),
    rec({ id: NaN }),
    rec({ id: NaN }),
  ]);
  assert.deepEqual(out.map((r) => (r.value as { id?: unknown }).id), [
    undefined,
    undefined,
    null,
    null,
    NaN,
  ]);
  const byKey = await harness(dedupe({ ttlMs: 1000 }));
  assert.equal((await byKey.push([rec(1), rec(1)])).length, 2);
});

Deno.test("dedupe() by value tells NaN, Infinity, -Infinity, null and undefined apart, nested too", async () => {
  const h = await harness(dedupe({ by: "value", ttlMs: 1000 }));
  const inner = [NaN, null, Infinity, -Infinity, undefined, 0, "0"];
  const input = inner.flatMap((p, i) => [rec({ p }, i), rec([{ p }], i)]);
  assert.equal((await h.push(input)).length, input.length);
  // The same values again are duplicates (NaN equals NaN, -0 equals 0).
  const again = inner.flatMap((
    p,
    i,
  ) => [rec({ p: p === 0 ? -0 : p }, 10 + i), rec([{ p }], 10 + i)]);
  assert.deepEqual(await h.push(again), []);
  const byField = await harness(dedupe({ by: { field: "p" }, ttlMs: 1000 }));
  const nested = [rec({ p: { q: NaN } }), rec({ p: { q: null } }), rec({ p: { q: NaN } })];
  assert.deepEqual(
    (await byField.push(nested)).map((r) => r.value),
    nested.slice(0, 2).map((r) => r.value),
  );
});

Deno.test("dedupe() forgets entries once the watermark passes their TTL", async () => {
  const h = await harness(dedupe({ ttlMs: 100 }));
  await h.push([rec(1, 0, "a"), rec(1, 50, "b")]);
  await h.advanceWatermark(100);
  assert.equal(h.ctx.keyed("dedupe").size, 1);
  await h.advanceWatermark(150);
  assert.equal(h.ctx.keyed("dedupe").size, 0);
});

Deno.test("dedupe() in processing time measures the TTL with ctx.now() and expires on ticks", async () => {
  const h = await harness(dedupe({ ttlMs: 100, time: "processing" }));
  assert.equal((await h.push([rec(1, 0, "a"), rec(2, 99_999, "a")])).length, 1);
  h.now = 99;
  assert.equal((await h.push([rec(3, 0, "a")])).length, 0);
  await h.tick(100);
  assert.equal(h.ctx.keyed("dedupe").size, 0);
  assert.equal((await h.push([rec(4, 0, "a")])).length, 1);
});

Deno.test("dedupe() handles a 100 kB key and empty input", async () => {
  const key = "d".repeat(100_000);
  const h = await harness(dedupe({ ttlMs: 10 }));
  assert.deepEqual(await h.push([]), []);
  assert.equal((await h.push([rec(1, 0, key), rec(2, 1, key)])).length, 1);
});

Deno.test("dedupe() restored from a snapshot into a fresh instance still knows what it saw", async () => {
  const ref = dedupe({ by: { field: "id" }, ttlMs: 1000 });
  const a = await harness(ref);
  await a.push([rec({ id: 1 }, 0, "k"), rec({ id: 2 }, 0, "k")]);
  const b = await harness(ref, { restore: a.snapshot() });
  const more = [rec({ id: 1 }, 10, "k"), rec({ id: 3 }, 10, "k")];
  assert.deepEqual(await b.push(more), await a.push(more));
  assert.deepEqual(b.emitted.map((r) => r.value), [{ id: 3 }]);
});

Deno.test("dedupe() rejects bad configs with a ConfigError naming the zod path", async () => {
  assert.throws(() => dedupe({ ttlMs: -1 }), {
    name: "ConfigError",
    message: /^Cannot configure stage "dedupe": config\.ttlMs: Number must be greater than 0$/,
  });
  assert.throws(() => dedupe({} as never), { message: /config\.ttlMs: Required/ });
  assert.throws(() => dedupe({ ttlMs: 1, by: "field" as never }), { message: /config\.by: / });
  assert.throws(() => dedupe({ ttlMs: 1, time: "wall" as never }), {
    message: /config\.time: Invalid enum value/,
  });
  await assert.rejects(() => harness(rawRef("dedupe.ts", "dedupeStage", { ttlMs: 1, window: 2 })), {
    message: /Unrecognized key\(s\) in object: 'window'/,
  });
  assert.equal(dedupeStage.stateful, true);
});

Deno.test("dedupe() in event time dead-letters records whose ts is NaN", async () => {
  const h = await harness(dedupe({ ttlMs: 10 }));
  await h.push([rec(1, NaN, "a"), rec(2, 0, "a")]);
  assert.deepEqual(h.dead.map((d) => d.reason), [
    "Cannot dedupe record: ts is NaN, not a finite number",
  ]);
  assert.equal(h.emitted.length, 1);
});
