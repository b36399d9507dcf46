// dedupe() through the runtime in inline and workers modes: by key, value and field, event and
// processing time, out-of-order and late duplicates, NaN/null ids, a 100 kB key, keyed parallelism.
import assert from "node:assert/strict";
import { dedupe, stage, type StreamRecord } from "../../../mod.ts";
import {
  byKey,
  dead,
  hugeKey,
  MARKERS_ONLY,
  modeTest,
  rec,
  run,
  values,
  viaJson,
  wm,
} from "./_modes.ts";

const HUGE = hugeKey();

modeTest(
  "dedupe() by key drops repeats within ttlMs of event time, out of order too",
  async (mode) => {
    const d = () => dedupe({ ttlMs: 100 });
    assert.deepEqual((await run(mode, (f) => f.via(d()), [])).output, []);
    const input = [
      rec({ i: 1 }, 0, "a"),
      rec({ i: 2 }, 50, "a"), // duplicate
      rec({ i: 3 }, -50, "a"), // out of order, 50 ms before the first: duplicate
      rec({ i: 4 }, 60, "b"), // a key with one record
      rec({ i: 5 }, 100, "a"), // exactly ttlMs after the first: new
      rec({ i: 6 }, 100), // no key: never a duplicate
      rec({ i: 7 }, 100),
      wm(200), // forgets a@100 and b@60: 100 + 100 <= 200
      rec({ i: 8 }, 150, "a"), // late; its entry expired with the watermark, so it passes
      rec({ i: 9 }, 120, "a"), // within ttlMs of a@150: duplicate
      rec({ i: 10 }, 0, HUGE),
      rec({ i: 11 }, 99, HUGE), // duplicate
    ];
    const result = await run(mode, (f) => f.via(d()), input, MARKERS_ONLY);
    assert.deepEqual(result.output, [
      rec({ i: 1 }, 0, "a"),
      rec({ i: 4 }, 60, "b"),
      rec({ i: 5 }, 100, "a"),
      rec({ i: 6 }, 100),
      rec({ i: 7 }, 100),
      rec({ i: 8 }, 150, "a"),
      rec({ i: 10 }, 0, HUGE),
    ]);
    assert.deepEqual(result.deadLetters, []);
  },
);

modeTest(
  "dedupe() by value or field: key order ignored, null ids always pass, NaN ids are equal",
  async (mode) => {
    const byValue = await run(mode, (f) => f.via(dedupe({ by: "value", ttlMs: 1000 })), [
      rec({ x: 1, y: 2 }, 0, "k"),
      rec({ y: 2, x: 1 }, 1, "k"), // same value, other key order: duplicate
      rec({ x: 1, y: 2 }, 2, "j"), // same value under another record key: new
      rec({ x: 1, y: 3 }, 3, "k"),
      rec({ x: 1, y: null }, 4, "k"),
      rec({ y: null, x: 1 }, 5, "k"), // duplicate
    ]);
    assert.deepEqual(values(byValue), [{ x: 1, y: 2 }, { x: 1, y: 2 }, { x: 1, y: 3 }, {
      x: 1,
      y: null,
    }]);

    const input = [
      rec({ id: 1 }, 0),
      rec({ id: 1 }, 1), // duplicate
      rec({ id: null }, 2), // no id: passes
      rec({ id: null }, 3),
      rec({}, 4),
      rec({ id: NaN }, 5),
      rec({ id: NaN }, 6), // NaN is the same id as NaN: duplicate
      rec({ id: "1" }, 7), // the string "1" is not the number 1
    ];
    const byField = await run(
      mode,
      (f) => f.via(dedupe({ by: { field: "id" }, ttlMs: 1000 })),
      input,
    );
    assert.deepEqual(
      byField.output,
      viaJson([0, 2, 3, 4, 5, 7].map((i) => input[i])),
    );
  },
);

modeTest(
  "dedupe() on processing time ignores ts; on event time it dead-letters a NaN ts",
  async (mode) => {
    const processing = await run(
      mode,
      (f) => f.via(dedupe({ ttlMs: 60_000, time: "processing" })),
      [
        rec(1, 0, "a"),
        rec(2, 1e12, "a"), // a year of event time later, but the same minute: duplicate
        rec(3, 5, "b"),
      ],
    );
    assert.deepEqual(processing.output, [rec(1, 0, "a"), rec(3, 5, "b")]);

    const setTs = stage(new URL("./_fixtures.ts", import.meta.url), {}, { export: "setTs" });
    const result = await run(mode, (f) => f.via(setTs).via(dedupe({ ttlMs: 10 })), [
      rec({ at: NaN }, 1, "a"),
      rec({}, 2, "a"),
    ]);
    assert.deepEqual(result.output, [rec({}, 2, "a")]);
    assert.deepEqual(dead(result).map((x) => [x.stage, x.message, x.attempts, x.record.key]), [
      ["dedupe", "Cannot dedupe record: ts is NaN, not a finite number", 3, "a"],
    ]);
  },
);

modeTest(
  "dedupe() at parallelism 2 after keyBy drops the same records per key as parallelism 1",
  async (mode) => {
    const input = Array.from({ length: 60 }, (_, i) => rec(i, i * 10, `k${i % 6}`));
    // Each key repeats every 60 ms; a record passes when 100 ms passed since the last one passed.
    const expected: Record<string, StreamRecord<number>[]> = {};
    const last: Record<string, number> = {};
    for (const r of input) {
      const seen = last[r.key!];
      if (seen !== undefined && r.ts - seen < 100) continue;
      last[r.key!] = r.ts;
      (expected[r.key!] ??= []).push(r);
    }
    for (const parallelism of [1, 2]) {
      const result = await run(
        mode,
        (f) => f.keyBy().via(dedupe({ ttlMs: 100 }), { parallelism }),
        input,
        { defaults: { batchSize: 7 } },
      );
      assert.deepEqual(byKey(result.output), expected, `parallelism ${parallelism}`);
    }
  },
);

// Fixed bug: identity() used to serialise objects with JSON.stringify, so NaN, Infinity and null
// inside a value all read as null and dedupe({ by: "value" }) kept only the first of these.
modeTest("dedupe() by value tells NaN, Infinity and null apart", async (mode) => {
  const input = [rec({ p: NaN }, 0, "a"), rec({ p: null }, 1, "a"), rec({ p: Infinity }, 2, "a")];
  const result = await run(mode, (f) => f.via(dedupe({ by: "value", ttlMs: 100 })), input);
  assert.deepEqual(result.output, viaJson(input));
});
