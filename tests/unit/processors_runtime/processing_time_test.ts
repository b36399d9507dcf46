// Processing-time behaviour through the runtime, inline and in workers: a rate limit trickles
// records in over ~300 ms of real time, so batch() and sort() timeouts and processing-time
// windows see real time pass (the end of input alone would emit one batch, one sorted run).
import assert from "node:assert/strict";
import { batch, rateLimit, sort, window } from "../../../mod.ts";
import { modeTest, rec, run } from "./_modes.ts";

type V = { v: number };
// 25 records/s with a burst of 1: one record every 40 ms. In a task of its own: fused with the
// source, it would see the end of input at once and flush what it holds as one emission.
const trickle = () => rateLimit<V>({ perSecond: 25, burst: 1 }, { fuse: false });
const input = Array.from({ length: 8 }, (_, i) => rec({ v: 8 - i }, 10 * i, "a"));

modeTest(
  "batch() timeoutMs emits partial batches on ticks while input trickles in",
  async (mode) => {
    const result = await run(
      mode,
      (f) => f.via(trickle()).via(batch<V>({ size: 100, timeoutMs: 20 }, { tickMs: 5 })),
      input,
    );
    assert.ok(result.output.length >= 2, `expected timed-out batches, got ${result.output.length}`);
    assert.deepEqual(result.output.flatMap((r) => r.value), input.map((r) => r.value));
    for (const r of result.output) {
      assert.equal(r.key, "a");
      assert.equal(r.ts, 10 * (8 - r.value.at(-1)!.v));
    }
  },
);

modeTest("sort() timeoutMs releases sorted runs on ticks while input trickles in", async (mode) => {
  const result = await run(
    mode,
    (f) => f.via(trickle()).via(sort<V>({ by: "v", timeoutMs: 20 }, { tickMs: 5 })),
    input,
  );
  const got = result.output.map((r) => r.value.v);
  assert.deepEqual([...got].sort((a, b) => a - b), [1, 2, 3, 4, 5, 6, 7, 8]);
  // Input is descending: had nothing been released before the end, output would be ascending.
  assert.notDeepEqual(got, [1, 2, 3, 4, 5, 6, 7, 8]);
});

modeTest(
  "window() on processing time splits trickling records into 100 ms windows by arrival time",
  async (mode) => {
    const started = Date.now();
    const result = await run(
      mode,
      (f) =>
        f.via(trickle()).via(
          window({
            type: "tumbling",
            sizeMs: 100,
            time: "processing",
            aggregate: { n: { op: "count" }, total: { op: "sum", field: "v" } },
          }),
          { tickMs: 10 },
        ),
      input,
    );
    assert.ok(result.output.length >= 2, `expected several windows, got ${result.output.length}`);
    let n = 0, total = 0, lastEnd = -Infinity;
    for (const { key, value } of result.output) {
      assert.equal(key, "a");
      assert.equal(value.windowEnd - value.windowStart, 100);
      assert.equal(value.windowStart % 100, 0);
      assert.ok(value.windowStart >= started - 100, "a window before the run started");
      assert.ok(value.windowEnd > lastEnd, "windows out of order");
      lastEnd = value.windowEnd;
      n += value.n as number;
      total += value.total as number;
    }
    assert.deepEqual([n, total], [8, 36]);
  },
);
