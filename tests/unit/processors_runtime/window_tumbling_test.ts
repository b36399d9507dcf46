// window({ type: "tumbling" }) through the runtime in inline and workers modes: watermarks from
// the input, out-of-order and late records, the "late" side output, exact boundaries, allowed
// lateness, non-finite timestamps and a 100 kB key.
import assert from "node:assert/strict";
import { stage, window } from "../../../mod.ts";
import { dead, hugeKey, MARKERS_ONLY, modeTest, rec, run, wm } from "./_modes.ts";

const HUGE = hugeKey();
type V = { v?: number | null; at?: number };
const tumbling = (extra: { allowedLatenessMs?: number; offsetMs?: number } = {}) =>
  window({
    type: "tumbling",
    sizeMs: 1000,
    ...extra,
    aggregate: {
      n: { op: "count" },
      total: { op: "sum", field: "v" },
      lo: { op: "min", field: "v" },
    },
  });
const out = (key: string | undefined, start: number, n: number, total: number, lo: number | null) =>
  rec(
    {
      windowStart: start,
      windowEnd: start + 1000,
      ...(key === undefined ? {} : { key }),
      n,
      total,
      lo,
    },
    start + 999,
    key,
  );

modeTest(
  "window() tumbling fires on input watermarks in (end, key) order; late records go to the side output",
  async (mode) => {
    const empty = await run(mode, (f) => f.via(tumbling()), [], { sideOutputs: ["late"] });
    assert.deepEqual([empty.output, empty.sides.late, empty.deadLetters], [[], [], []]);

    const input = [
      rec<V>({ v: 1 }, 0, "a"),
      rec<V>({ v: 2 }, 999, "a"),
      rec<V>({ v: 8 }, 500, "b"),
      rec<V>({ v: 10 }, 1000, "a"), // exactly the end of [0, 1000): belongs to [1000, 2000)
      wm(999),
      rec<V>({ v: 4 }, 300, "a"), // out of order, not late: the watermark is still before 1000
      wm(1000),
      rec<V>({ v: 100 }, 999, "a"), // late: [0, 1000) fired and is gone
      rec<V>({ v: NaN }, 1500, "c"),
      rec<V>({ v: null }, 1600, "c"),
      rec<V>({ v: 5 }, 1999, HUGE),
      wm(2000),
      rec<V>({ v: 1 }, 2500, "d"), // fired by the end of input
    ];
    const result = await run(mode, (f) => f.via(tumbling()), input, {
      ...MARKERS_ONLY,
      sideOutputs: ["late"],
    });
    assert.deepEqual(result.output, [
      out("a", 0, 3, 7, 1),
      out("b", 0, 1, 8, 8),
      out("a", 1000, 1, 10, 10),
      out("c", 1000, 2, 0, null),
      out(HUGE, 1000, 1, 5, 5),
      out("d", 2000, 1, 1, 1),
    ]);
    assert.deepEqual(result.sides.late, [rec({ v: 100 }, 999, "a")]);
    assert.deepEqual(result.deadLetters, []);
  },
);

modeTest(
  "window() tumbling dead-letters late records when the side output is not wired",
  async (mode) => {
    const input = [
      rec<V>({ v: 1 }, 100, "a"),
      rec<V>({ v: 2 }, 1500, "a"),
      wm(1500),
      rec<V>({ v: 5 }, 200, "a"),
    ];
    // Default bounded out-of-orderness 0: the first pull alone moves the watermark to 1500.
    const result = await run(mode, (f) => f.via(tumbling()), input);
    assert.deepEqual(result.output, [out("a", 0, 1, 1, 1), out("a", 1000, 1, 2, 2)]);
    assert.deepEqual(dead(result), [{
      stage: "window",
      message: 'side output "late" is not wired',
      attempts: 1,
      record: rec({ v: 5 }, 200, "a"),
    }]);
  },
);

modeTest(
  "window() tumbling re-fires late updates within allowedLatenessMs, then sends them to late",
  async (mode) => {
    const input = [
      rec<V>({ v: 1 }, 10, "a"),
      wm(1000),
      rec<V>({ v: 2 }, 20, "a"),
      wm(1499),
      rec<V>({ v: 4 }, 30, "a"),
      rec<V>({ v: 16 }, 700, "b"), // a first record for b's closed window, within the lateness
      wm(1500),
      rec<V>({ v: 8 }, 40, "a"),
    ];
    const result = await run(mode, (f) => f.via(tumbling({ allowedLatenessMs: 500 })), input, {
      ...MARKERS_ONLY,
      sideOutputs: ["late"],
    });
    assert.deepEqual(result.output, [
      out("a", 0, 1, 1, 1),
      out("a", 0, 2, 3, 1),
      out("a", 0, 3, 7, 1),
      out("b", 0, 1, 16, 16),
    ]);
    assert.deepEqual(result.sides.late, [rec({ v: 8 }, 40, "a")]);
  },
);

modeTest(
  "window() tumbling honours offsetMs and negative timestamps at exact boundaries",
  async (mode) => {
    const input = [
      rec<V>({ v: 1 }, -1), // [-750, 250)
      rec<V>({ v: 2 }, 249), // [-750, 250)
      rec<V>({ v: 4 }, 250), // [250, 1250)
      rec<V>({ v: 8 }, 1249), // [250, 1250)
      rec<V>({ v: 16 }, 1250), // [1250, 2250)
      wm(1250),
    ];
    const result = await run(mode, (f) => f.via(tumbling({ offsetMs: 250 })), input, MARKERS_ONLY);
    assert.deepEqual(result.output, [
      out(undefined, -750, 2, 3, 1),
      out(undefined, 250, 2, 12, 4),
      out(undefined, 1250, 1, 16, 16),
    ]);
  },
);

modeTest("window() dead-letters a record with a non-finite ts and keeps the rest", async (mode) => {
  const setTs = stage<V, V>(new URL("./_fixtures.ts", import.meta.url), {}, { export: "setTs" });
  const input = [
    rec<V>({ v: 1 }, 5, "a"),
    rec<V>({ v: 2, at: NaN }, 6, "a"),
    rec<V>({ v: 3, at: Infinity }, 7, "b"),
  ];
  const result = await run(mode, (f) => f.via(setTs).via(tumbling()), input);
  assert.deepEqual(result.output, [out("a", 0, 1, 1, 1)]);
  assert.deepEqual(dead(result).map((d) => [d.stage, d.message, d.record.value, d.record.ts]), [
    ["window", "Cannot window record: ts is NaN, not a finite number", { v: 2, at: NaN }, NaN],
    [
      "window",
      "Cannot window record: ts is Infinity, not a finite number",
      { v: 3, at: Infinity },
      Infinity,
    ],
  ]);
});
