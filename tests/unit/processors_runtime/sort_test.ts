// sort() through the runtime in inline and workers modes: size-bounded batches, multi-key order
// with NaN/null last, event-time windows with exact boundaries and late records, keyed parallelism.
import assert from "node:assert/strict";
import { sort, stage, type StreamRecord } from "../../../mod.ts";
import { byKey, dead, hugeKey, MARKERS_ONLY, modeTest, rec, run, viaJson, wm } from "./_modes.ts";

type P = { p?: number | string | null };

modeTest(
  "sort() emits size-bounded sorted batches, missing/null/NaN last, the rest at the end",
  async (mode) => {
    const bySize = () => sort({ by: "p", size: 3 });
    assert.deepEqual((await run(mode, (f) => f.via(bySize()), [])).output, []);
    const r = [
      rec<P>({ p: 5 }, 1, "a"),
      rec<P>({ p: 1 }, 2, "b"),
      rec<P>({ p: 3 }, 3, hugeKey()),
      rec<P>({ p: NaN }, 4),
      rec<P>({ p: 2 }, 5),
      rec<P>({ p: null }, 6),
      rec<P>({ p: "9" }, 7), // alone at the end of input: flushed
    ];
    const result = await run(mode, (f) => f.via(bySize()), [
      ...r.slice(0, 3),
      wm(3),
      ...r.slice(3),
    ]);
    assert.deepEqual(result.output, viaJson([r[1], r[2], r[0], r[4], r[3], r[5], r[6]]));

    // Numbers before strings ascending; descending price then ascending ts, missing last, stable.
    const q = [
      rec<P>({ p: 2 }, 5),
      rec<P>({ p: "b" }, 9),
      rec<P>({ p: 9 }, 1),
      rec<P>({}, 0),
      rec<P>({ p: 2 }, 3),
      rec<P>({ p: 9 }, 2),
      rec<P>({ p: 2 }, 3, "second"),
    ];
    const asc = await run(mode, (f) => f.via(sort({ by: "p" })), q);
    assert.deepEqual(asc.output, [q[0], q[4], q[6], q[2], q[5], q[1], q[3]]);
    const numeric = q.filter((x) => x.value.p !== "b");
    const desc = await run(mode, (f) => f.via(sort({ by: ["-p", "$ts"] })), numeric);
    assert.deepEqual(desc.output, [q[2], q[5], q[4], q[6], q[0], q[3]]);
  },
);

modeTest(
  "sort() windowMs sorts each event-time window at its end; late records go to the side output",
  async (mode) => {
    const input = [
      rec("a", 900),
      rec("b", 100),
      rec("c", 1000, "k"), // exactly the end of [0, 1000): next window
      rec("d", 999),
      wm(1000),
      rec("e", 500), // its window was emitted: late
      rec("f", 1500),
      rec("g", 1200, "k"),
    ];
    const windowed = () => sort({ by: "$ts", windowMs: 1000 });
    const result = await run(mode, (f) => f.via(windowed()), input, {
      ...MARKERS_ONLY,
      sideOutputs: ["late"],
    });
    assert.deepEqual(result.output, [
      rec("b", 100),
      rec("a", 900),
      rec("d", 999),
      rec("c", 1000, "k"),
      rec("g", 1200, "k"),
      rec("f", 1500),
    ]);
    assert.deepEqual(result.sides.late, [rec("e", 500)]);

    const unwired = await run(mode, (f) => f.via(windowed()), input, MARKERS_ONLY);
    assert.deepEqual(dead(unwired), [{
      stage: "sort",
      message: 'side output "late" is not wired',
      attempts: 1,
      record: rec("e", 500),
    }]);

    const setTs = stage(new URL("./_fixtures.ts", import.meta.url), {}, { export: "setTs" });
    const nan = await run(mode, (f) => f.via(setTs).via(windowed()), [
      rec({ at: NaN }, 1),
      rec({}, 2),
    ]);
    assert.deepEqual(nan.output, [rec({}, 2)]);
    assert.deepEqual(dead(nan).map((x) => [x.stage, x.message, x.attempts]), [
      ["sort", "Cannot sort record: ts is NaN, not a finite number", 3],
    ]);
  },
);

modeTest(
  "sort() at parallelism 2 after keyBy orders each key's records as parallelism 1 does",
  async (mode) => {
    const input = Array.from({ length: 50 }, (_, i) => rec({ v: (i * 37) % 50 }, i, `k${i % 7}`));
    const expected: Record<string, StreamRecord<{ v: number }>[]> = {};
    for (const r of [...input].sort((a, b) => a.value.v - b.value.v)) {
      (expected[r.key!] ??= []).push(r);
    }
    for (const parallelism of [1, 2]) {
      const result = await run(
        mode,
        (f) => f.keyBy().via(sort({ by: "v" }), { parallelism }),
        input,
      );
      assert.deepEqual(byKey(result.output), expected, `parallelism ${parallelism}`);
    }
  },
);
