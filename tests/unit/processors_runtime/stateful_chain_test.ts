// Stateful processors chained and run in parallel through the runtime, inline and in workers:
// watermarks forwarded from one window to the next, late side outputs of parallel instances, and
// dedupe feeding aggregate over keyed edges.
import assert from "node:assert/strict";
import { aggregate, dedupe, type StreamRecord, window } from "../../../mod.ts";
import { byKey, hugeKey, MARKERS_ONLY, modeTest, rec, run, sorted, wm } from "./_modes.ts";

const HUGE = hugeKey();

modeTest(
  "window() → window(): the outer window fires from the watermarks the inner one forwards",
  async (mode) => {
    const inner = window({ type: "tumbling", sizeMs: 1000, aggregate: { n: { op: "count" } } });
    const outer = window({
      type: "tumbling",
      sizeMs: 2000,
      aggregate: { n: { op: "sum", field: "n" }, windows: { op: "count" } },
    });
    const input = [
      rec(1, 100, "a"),
      rec(2, 1100, "a"),
      rec(3, 1200, "a"),
      rec(4, 1300, "b"),
      wm(2500),
      rec(5, 2600, "a"),
      rec(6, 4600, "a"),
    ];
    const result = await run(mode, (f) => f.via(inner).via(outer), input, {
      ...MARKERS_ONLY,
      sideOutputs: ["late"],
    });
    const w = (key: string, s: number, n: number, windows: number) =>
      rec({ windowStart: s, windowEnd: s + 2000, key, n, windows }, s + 1999, key);
    // Inner: a [0,1000) 1, a [1000,2000) 2, b [1000,2000) 1, a [2000,3000) 1, a [4000,5000) 1.
    assert.deepEqual(result.output, [
      w("a", 0, 3, 2),
      w("b", 0, 1, 1),
      w("a", 2000, 1, 1),
      w("a", 4000, 1, 1),
    ]);
    assert.deepEqual([result.sides.late, result.deadLetters], [[], []]);
  },
);

modeTest(
  "window() at parallelism 2 sends each instance's late records to the side output",
  async (mode) => {
    const keys = ["a", "b", "c", "d", "e", HUGE];
    const input = [
      ...keys.map((k, i) => rec({ v: i + 1 }, 100 * i, k)),
      wm(1000),
      ...keys.map((k, i) => rec({ v: 10 * (i + 1) }, 999 - i, k)), // all late
      ...keys.map((k, i) => rec({ v: 100 * (i + 1) }, 1000 + i, k)), // [1000, 2000)
    ];
    const result = await run(
      mode,
      (f) =>
        f.keyBy().via(
          window({
            type: "tumbling",
            sizeMs: 1000,
            aggregate: { total: { op: "sum", field: "v" } },
          }),
          { parallelism: 2 },
        ),
      input,
      { ...MARKERS_ONLY, sideOutputs: ["late"] },
    );
    const expected = keys.flatMap((k, i) => [
      rec({ windowStart: 0, windowEnd: 1000, key: k, total: i + 1 }, 999, k),
      rec({ windowStart: 1000, windowEnd: 2000, key: k, total: 100 * (i + 1) }, 1999, k),
    ]);
    assert.deepEqual(sorted(result.output), sorted(expected));
    const late = keys.map((k, i) => rec({ v: 10 * (i + 1) }, 999 - i, k));
    assert.deepEqual(sorted(result.sides.late ?? []), sorted(late));
    assert.deepEqual(result.deadLetters, []);
  },
);

modeTest(
  "dedupe() → aggregate() over keyed edges at parallelism 2 matches a sequential count",
  async (mode) => {
    const input = Array.from({ length: 80 }, (_, i) => {
      const key = i % 9 === 0 ? HUGE : `u${i % 4}`;
      return rec({ order: `o${Math.floor(i / 2)}`, amount: i }, i, key); // every order twice
    });
    const expected: Record<string, StreamRecord<unknown>[]> = {};
    const seen = new Set<string>();
    const acc: Record<string, [number, number]> = {};
    for (const r of input) {
      const id = `${r.key}/${r.value.order}`;
      if (seen.has(id)) continue;
      seen.add(id);
      const a = acc[r.key!] ??= [0, 0];
      a[0]++;
      a[1] += r.value.amount;
      (expected[r.key!] ??= []).push(rec({ key: r.key, orders: a[0], revenue: a[1] }, r.ts, r.key));
    }
    const result = await run(
      mode,
      (f) =>
        f.keyBy()
          .via(dedupe({ by: { field: "order" }, ttlMs: 1e9 }), { parallelism: 2 })
          .keyBy()
          .via(
            aggregate({ orders: { op: "count" }, revenue: { op: "sum", field: "amount" } }),
            { parallelism: 2 },
          ),
      input,
      { defaults: { batchSize: 16 } },
    );
    assert.deepEqual(byKey(result.output), expected);
  },
);
