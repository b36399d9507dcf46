// batch() and rateLimit() through the runtime in inline and workers modes: size-bounded and
// per-key batches, keys kept only when shared, null values, a 100 kB key, keyed parallelism,
// and a rate limit that passes every record in order while holding them back in time.
import assert from "node:assert/strict";
import { batch, rateLimit, type StreamRecord } from "../../../mod.ts";
import { byKey, hugeKey, modeTest, rec, run, wm } from "./_modes.ts";

const HUGE = hugeKey();

modeTest(
  "batch() groups records by size, keeps a key only when all share it, flushes the rest",
  async (mode) => {
    assert.deepEqual((await run(mode, (f) => f.via(batch({ size: 3 })), [])).output, []);
    const input = [
      rec(1, 5, "a"),
      rec(2, 3, "a"),
      rec(3, 9, "a"),
      rec(4, 1, "b"),
      rec(5, 2, "a"),
      wm(2),
      rec(null, 7, "c"),
      rec(7, 0, HUGE),
    ];
    const result = await run(mode, (f) => f.via(batch({ size: 3 })), input);
    assert.deepEqual(result.output, [
      rec([1, 2, 3], 9, "a"),
      rec([4, 5, null], 7), // mixed keys: no key; ts is the latest
      rec([7], 0, HUGE),
    ]);
    assert.deepEqual(result.deadLetters, []);
  },
);

modeTest(
  "batch() perKey batches each key apart; records without a key share one batch",
  async (mode) => {
    const input = [
      rec(1, 1, "a"),
      rec(2, 2, "b"),
      rec(3, 3, "a"),
      rec(4, 4, "c"),
      rec(5, 5, "b"),
      rec(6, 6, "a"),
      rec(7, 7),
      rec(8, 8),
    ];
    const result = await run(mode, (f) => f.via(batch({ size: 2, perKey: true })), input);
    // Full batches come in input order; the partial ones at the end of input, in any key order.
    assert.deepEqual(result.output.slice(0, 3), [
      rec([1, 3], 3, "a"),
      rec([2, 5], 5, "b"),
      rec([7, 8], 8),
    ]);
    assert.deepEqual(byKey(result.output), {
      a: [rec([1, 3], 3, "a"), rec([6], 6, "a")],
      b: [rec([2, 5], 5, "b")],
      c: [rec([4], 4, "c")],
      "": [rec([7, 8], 8)],
    });
  },
);

modeTest(
  "batch() perKey at parallelism 2 after keyBy gives each key the same batches as parallelism 1",
  async (mode) => {
    const input = Array.from({ length: 50 }, (_, i) => rec(i, i, `k${(i * 5) % 9}`));
    const expected: Record<string, StreamRecord<number[]>[]> = {};
    const open: Record<string, StreamRecord<number>[]> = {};
    const close = (key: string) => {
      const held = open[key]!;
      (expected[key] ??= []).push(rec(held.map((r) => r.value), held.at(-1)!.ts, key));
      delete open[key];
    };
    for (const r of input) {
      (open[r.key!] ??= []).push(r);
      if (open[r.key!]!.length === 3) close(r.key!);
    }
    for (const key of Object.keys(open)) close(key);
    for (const parallelism of [1, 2]) {
      const result = await run(
        mode,
        (f) => f.keyBy().via(batch({ size: 3, perKey: true }), { parallelism }),
        input,
      );
      assert.deepEqual(byKey(result.output), expected, `parallelism ${parallelism}`);
    }
  },
);

modeTest(
  "rateLimit() passes every record in order and spaces them at the configured rate",
  async (mode) => {
    assert.deepEqual((await run(mode, (f) => f.via(rateLimit({ perSecond: 10 })), [])).output, []);
    const fast = Array.from(
      { length: 50 },
      (_, i) => rec({ i, n: i % 2 ? null : NaN }, i, `k${i % 3}`),
    );
    const passed = await run(mode, (f) => f.via(rateLimit({ perSecond: 1000 })), fast);
    assert.deepEqual(
      passed.output.map((r) => [r.key, r.ts, r.value.i]),
      fast.map((r) => [r.key, r.ts, r.value.i]),
    );

    // 20/s with a burst of 1: the first passes at once, the other five wait 50 ms each.
    const slow = Array.from({ length: 6 }, (_, i) => rec(i, i, HUGE));
    const started = performance.now();
    const limited = await run(mode, (f) => f.via(rateLimit({ perSecond: 20, burst: 1 })), slow);
    const elapsed = performance.now() - started;
    assert.deepEqual(limited.output, slow);
    assert.ok(elapsed >= 240, `6 records at 20/s took ${elapsed.toFixed(0)} ms, expected >= 250`);
  },
);

modeTest(
  "rateLimit() at parallelism 2 after keyBy keeps each key's records in order",
  async (mode) => {
    const input = Array.from({ length: 40 }, (_, i) => rec(i, i, `k${i % 5}`));
    const result = await run(
      mode,
      (f) => f.keyBy().via(rateLimit({ perSecond: 2000 }), { parallelism: 2 }),
      input,
    );
    assert.deepEqual(byKey(result.output), byKey(input));
  },
);
