import assert from "node:assert/strict";
import { window } from "../../../processors/window.ts";
import { harness, rec } from "./_harness.ts";

type Sale = { v?: unknown };
const sales = (options: { allowedLatenessMs?: number } = {}) =>
  window<Sale>({
    type: "tumbling",
    sizeMs: 1000,
    ...options,
    aggregate: { n: { op: "count" }, total: { op: "sum", field: "v" } },
  });

Deno.test("window() tumbling fires when the watermark passes the window end", async () => {
  const h = await harness(sales());
  await h.push([rec({ v: 1 }, 0, "a"), rec({ v: 2 }, 999, "a"), rec({ v: 8 }, 500, "b")]);
  assert.deepEqual(await h.advanceWatermark(999), []);
  assert.deepEqual(await h.advanceWatermark(1000), [
    { key: "a", ts: 999, value: { windowStart: 0, windowEnd: 1000, key: "a", n: 2, total: 3 } },
    { key: "b", ts: 999, value: { windowStart: 0, windowEnd: 1000, key: "b", n: 1, total: 8 } },
  ]);
  assert.deepEqual(await h.advanceWatermark(5000), []);
});

Deno.test("window() tumbling puts ts == windowEnd in the next window", async () => {
  const h = await harness(sales());
  await h.push([rec({ v: 1 }, 999, "a"), rec({ v: 10 }, 1000, "a")]);
  const out = await h.advanceWatermark(2000);
  assert.deepEqual(out.map((r) => [r.value.windowStart, r.value.total]), [[0, 1], [1000, 10]]);
});

Deno.test("window() tumbling counts out-of-order events that arrive before the watermark", async () => {
  const h = await harness(sales());
  await h.push([rec({ v: 1 }, 900, "a"), rec({ v: 2 }, 100, "a")]);
  await h.advanceWatermark(950);
  await h.push([rec({ v: 4 }, 50, "a")]);
  assert.deepEqual((await h.advanceWatermark(1000)).map((r) => r.value.total), [7]);
  assert.deepEqual(h.sideOf("late"), []);
});

Deno.test('window() tumbling sends records behind the watermark to the "late" side output', async () => {
  const h = await harness(sales());
  await h.push([rec({ v: 1 }, 10, "a")]);
  await h.advanceWatermark(1000);
  const late = rec({ v: 5 }, 999, "a");
  assert.deepEqual(await h.push([late]), []);
  assert.deepEqual(h.side.late, [late]);
  assert.equal(h.dead.length, 0);
});

Deno.test("window() tumbling re-fires an updated result for late records within the allowed lateness", async () => {
  const h = await harness(sales({ allowedLatenessMs: 500 }));
  await h.push([rec({ v: 1 }, 10, "a")]);
  assert.deepEqual((await h.advanceWatermark(1000)).map((r) => r.value.total), [1]);
  assert.deepEqual((await h.push([rec({ v: 2 }, 20, "a")])).map((r) => r.value.total), [3]);
  assert.deepEqual(await h.advanceWatermark(1499), []);
  assert.deepEqual((await h.push([rec({ v: 4 }, 30, "a")])).map((r) => r.value.total), [7]);
  await h.advanceWatermark(1500);
  await h.push([rec({ v: 8 }, 40, "a")]);
  assert.deepEqual(h.sideOf("late").map((r) => r.ts), [40]);
  assert.deepEqual(await h.flush(), []);
});

Deno.test("window() tumbling creates a window for a first record arriving within the lateness", async () => {
  const h = await harness(sales({ allowedLatenessMs: 500 }));
  await h.advanceWatermark(1200);
  assert.deepEqual((await h.push([rec({ v: 3 }, 700, "z")])).map((r) => r.value), [
    { windowStart: 0, windowEnd: 1000, key: "z", n: 1, total: 3 },
  ]);
});

Deno.test("window() keeps records without a key in one window set and emits them without a key", async () => {
  const h = await harness(sales());
  await h.push([rec({ v: 1 }, 0), rec({ v: 2 }, 1)]);
  assert.deepEqual(await h.advanceWatermark(1000), [
    { ts: 999, value: { windowStart: 0, windowEnd: 1000, n: 2, total: 3 } },
  ]);
});

Deno.test("window() fires every open window on flush, in window-end order", async () => {
  const h = await harness(sales());
  await h.push([rec({ v: 1 }, 5500, "a"), rec({ v: 1 }, 100, "b"), rec({ v: 1 }, 2100, "a")]);
  const out = await h.flush();
  assert.deepEqual(out.map((r) => [r.key, r.value.windowEnd]), [["b", 1000], ["a", 3000], [
    "a",
    6000,
  ]]);
  assert.deepEqual(await h.flush(), []);
});

Deno.test("window() on empty input fires nothing", async () => {
  const h = await harness(sales());
  assert.deepEqual(await h.push([]), []);
  assert.deepEqual(await h.advanceWatermark(10_000), []);
  assert.deepEqual(await h.flush(), []);
});

Deno.test("window() skips NaN, null and non-number fields in sums", async () => {
  const h = await harness(window<Sale>({
    type: "tumbling",
    sizeMs: 1000,
    aggregate: {
      total: { op: "sum", field: "v" },
      avg: { op: "avg", field: "v" },
      n: { op: "count" },
    },
  }));
  await h.push([rec({ v: NaN }), rec({ v: null }), rec({}), rec({ v: "5" }), rec({ v: Infinity })]);
  assert.deepEqual((await h.flush())[0]?.value, {
    windowStart: 0,
    windowEnd: 1000,
    total: 0,
    avg: null,
    n: 5,
  });
});

Deno.test("window() handles a 100 kB key with a single record", async () => {
  const key = "w".repeat(100_000);
  const h = await harness(sales());
  await h.push([rec({ v: 1 }, 0, key)]);
  const [out] = await h.advanceWatermark(1000);
  assert.equal(out?.key, key);
  assert.equal(out?.value.key, key);
  assert.equal(out?.value.n, 1);
});

Deno.test("window() with an offset aligns windows to it", async () => {
  const h = await harness(
    window({ type: "tumbling", sizeMs: 1000, offsetMs: 250, aggregate: { n: { op: "count" } } }),
  );
  await h.push([rec(1, 249), rec(1, 250)]);
  assert.deepEqual((await h.flush()).map((r) => r.value.windowStart), [-750, 250]);
});

Deno.test("window() dead-letters records whose ts is NaN or infinite", async () => {
  const h = await harness(sales());
  await h.push([rec({ v: 1 }, NaN, "a"), rec({ v: 1 }, Infinity, "a"), rec({ v: 2 }, 5, "a")]);
  assert.deepEqual(h.dead.map((d) => d.reason), [
    "Cannot window record: ts is NaN, not a finite number",
    "Cannot window record: ts is Infinity, not a finite number",
  ]);
  assert.deepEqual((await h.flush()).map((r) => r.value.total), [2]);
});
