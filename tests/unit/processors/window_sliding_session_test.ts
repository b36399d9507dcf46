import assert from "node:assert/strict";
import { window } from "../../../processors/window.ts";
import { harness, rec } from "./_harness.ts";

const sliding = window({
  type: "sliding",
  sizeMs: 1000,
  slideMs: 500,
  aggregate: { n: { op: "count" } },
});
const sessions = (allowedLatenessMs = 0) =>
  window({
    type: "session",
    gapMs: 100,
    allowedLatenessMs,
    aggregate: { n: { op: "count" }, sum: { op: "sum", field: "v" } },
  });

Deno.test("window() sliding puts a record in every window covering it", async () => {
  const h = await harness(sliding);
  await h.push([rec(1, 750, "a")]);
  const out = await h.flush();
  assert.deepEqual(out.map((r) => [r.value.windowStart, r.value.windowEnd, r.ts]), [
    [0, 1000, 999],
    [500, 1500, 1499],
  ]);
});

Deno.test("window() sliding treats window boundaries as half-open", async () => {
  const h = await harness(sliding);
  await h.push([rec(1, 500), rec(1, 0)]);
  const out = await h.flush();
  assert.deepEqual(out.map((r) => [r.value.windowStart, r.value.n]), [[-500, 1], [0, 2], [500, 1]]);
});

Deno.test("window() sliding fires each window as the watermark passes its end", async () => {
  const h = await harness(sliding);
  await h.push([rec(1, 100), rec(1, 600), rec(1, 1200)]);
  assert.deepEqual((await h.advanceWatermark(1000)).map((r) => [r.value.windowStart, r.value.n]), [
    [-500, 1],
    [0, 2],
  ]);
  assert.deepEqual((await h.advanceWatermark(1500)).map((r) => [r.value.windowStart, r.value.n]), [
    [500, 2],
  ]);
});

Deno.test("window() sliding counts a partly late record only in its windows still open", async () => {
  const h = await harness(sliding);
  await h.advanceWatermark(1000);
  await h.push([rec(1, 750, "a")]);
  assert.deepEqual(h.sideOf("late"), []);
  assert.deepEqual((await h.flush()).map((r) => r.value.windowStart), [500]);
  await h.push([rec(1, 400, "a")]);
  assert.deepEqual(h.sideOf("late").map((r) => r.ts), [400]);
});

Deno.test("window() session merges records closer than the gap", async () => {
  const h = await harness(sessions());
  await h.push([
    rec({ v: 1 }, 0, "u"),
    rec({ v: 2 }, 50, "u"),
    rec({ v: 4 }, 120, "u"),
    rec({ v: 8 }, 400, "u"),
  ]);
  assert.deepEqual(await h.advanceWatermark(219), []);
  assert.deepEqual((await h.advanceWatermark(220)).map((r) => r.value), [
    { windowStart: 0, windowEnd: 220, key: "u", n: 3, sum: 7 },
  ]);
  assert.deepEqual((await h.advanceWatermark(500)).map((r) => r.value), [
    { windowStart: 400, windowEnd: 500, key: "u", n: 1, sum: 8 },
  ]);
});

Deno.test("window() session bridges two sessions with a record that touches both", async () => {
  const h = await harness(sessions());
  await h.push([rec({ v: 1 }, 0, "u"), rec({ v: 2 }, 150, "u")]);
  await h.push([rec({ v: 4 }, 95, "u")]);
  assert.deepEqual((await h.flush()).map((r) => r.value), [
    { windowStart: 0, windowEnd: 250, key: "u", n: 3, sum: 7 },
  ]);
});

Deno.test("window() session keeps keys apart, handles a key with one record and fires in end order", async () => {
  const h = await harness(sessions());
  await h.push([rec({ v: 1 }, 0, "a"), rec({ v: 1 }, 10, "b"), rec({ v: 1 }, 20, "a")]);
  assert.deepEqual((await h.advanceWatermark(1000)).map((r) => [r.key, r.value.n]), [["b", 1], [
    "a",
    2,
  ]]);
});

Deno.test('window() session sends a late record that touches no open session to "late"', async () => {
  const h = await harness(sessions());
  await h.push([rec({ v: 1 }, 500, "u")]);
  await h.advanceWatermark(300);
  await h.push([rec({ v: 1 }, 100, "u")]);
  assert.deepEqual(h.sideOf("late").map((r) => r.ts), [100]);
  await h.push([rec({ v: 1 }, 450, "u")]);
  assert.deepEqual((await h.flush()).map((r) => [r.value.windowStart, r.value.n]), [[450, 2]]);
});

Deno.test("window() session re-fires a merged session when a late record extends it within lateness", async () => {
  const h = await harness(sessions(1000));
  await h.push([rec({ v: 1 }, 0, "u")]);
  assert.deepEqual((await h.advanceWatermark(200)).map((r) => r.value.windowEnd), [100]);
  const out = await h.push([rec({ v: 2 }, 90, "u")]);
  assert.deepEqual(out.map((r) => r.value), [{
    windowStart: 0,
    windowEnd: 190,
    key: "u",
    n: 2,
    sum: 3,
  }]);
});
