// window() sliding, session and processing-time layouts, and keyed parallelism 2, through the
// runtime in inline and workers modes.
import assert from "node:assert/strict";
import { type StageRef, type StreamRecord, window } from "../../../mod.ts";
import { byKey, hugeKey, MARKERS_ONLY, modeTest, rec, run, sorted, wm } from "./_modes.ts";

type V = { v: number; user?: string };
const sum = { n: { op: "count" }, total: { op: "sum", field: "v" } } as const;
const win = (key: string, s: number, e: number, extra: Record<string, unknown>) =>
  rec({ windowStart: s, windowEnd: e, key, ...extra }, e - 1, key);

modeTest(
  "window() sliding puts a record in every window covering it and fires each at its end",
  async (mode) => {
    const sliding = () => window({ type: "sliding", sizeMs: 1000, slideMs: 500, aggregate: sum });
    assert.deepEqual((await run(mode, (f) => f.via(sliding()), [])).output, []);
    const input = [
      rec({ v: 1 }, 0, "a"), // [-500, 500) and [0, 1000)
      rec({ v: 2 }, 499, "a"), // [-500, 500) and [0, 1000)
      rec({ v: 4 }, 500, "a"), // [0, 1000) and [500, 1500)
      rec({ v: 8 }, 999, "a"), // [0, 1000) and [500, 1500)
      rec({ v: 16 }, 1000, "b"), // [500, 1500) and [1000, 2000)
      wm(500),
      wm(1000),
      rec({ v: 32 }, 600, "a"), // [0, 1000) has fired: only [500, 1500) takes it
    ];
    const result = await run(mode, (f) => f.via(sliding()), input, {
      ...MARKERS_ONLY,
      sideOutputs: ["late"],
    });
    assert.deepEqual(result.output, [
      win("a", -500, 500, { n: 2, total: 3 }),
      win("a", 0, 1000, { n: 4, total: 15 }),
      win("a", 500, 1500, { n: 3, total: 44 }),
      win("b", 500, 1500, { n: 1, total: 16 }),
      win("b", 1000, 2000, { n: 1, total: 16 }),
    ]);
    assert.deepEqual([result.sides.late, result.deadLetters], [[], []]);
  },
);

modeTest(
  "window() session merges touching sessions, splits at the gap and sends late records aside",
  async (mode) => {
    const session = () =>
      window({
        type: "session",
        gapMs: 100,
        aggregate: {
          ...sum,
          lastTs: {
            op: "reduce",
            fn: (acc: number, _v: unknown, r: { ts: number }) => Math.max(acc, r.ts),
            initial: -1,
            merge: (a: number, b: number) => Math.max(a, b),
          },
        },
      });
    assert.deepEqual((await run(mode, (f) => f.via(session()), [])).output, []);
    const input = [
      rec({ v: 1 }, 0, "a"),
      rec({ v: 2 }, 100, "a"), // touches [0, 100): one session [0, 200)
      rec({ v: 4 }, 400, "a"),
      rec({ v: 8 }, 520, "a"),
      rec({ v: 16 }, 1000, "b"), // a key with one record
      rec({ v: 32 }, 460, "a"), // bridges [400, 500) and [520, 620) into [400, 620)
      rec({ v: 1 }, 0, "c"),
      rec({ v: 2 }, 101, "c"), // 1 ms past the gap: a second session
      wm(700),
      rec({ v: 64 }, 150, "a"), // late: its sessions fired and are gone
    ];
    const result = await run(mode, (f) => f.via(session()), input, {
      ...MARKERS_ONLY,
      sideOutputs: ["late"],
    });
    assert.deepEqual(result.output, [
      win("c", 0, 100, { n: 1, total: 1, lastTs: 0 }),
      win("a", 0, 200, { n: 2, total: 3, lastTs: 100 }),
      win("c", 101, 201, { n: 1, total: 2, lastTs: 101 }),
      win("a", 400, 620, { n: 3, total: 44, lastTs: 520 }),
      win("b", 1000, 1100, { n: 1, total: 16, lastTs: 1000 }),
    ]);
    assert.deepEqual(result.sides.late, [rec({ v: 64 }, 150, "a")]);
    assert.deepEqual(result.deadLetters, []);
  },
);

modeTest(
  "window() on processing time assigns records by the clock, whatever their ts",
  async (mode) => {
    const HOUR = 3_600_000;
    const huge = hugeKey();
    const input = [
      rec({ v: 1 }, 0, "a"),
      rec({ v: 2 }, 1e12, "a"),
      wm(5),
      rec({ v: 4 }, -5, "a"),
      rec({ v: 8 }, 7, "b"),
      rec({ v: 16 }, 9, huge),
    ];
    const hourly = () =>
      window({ type: "tumbling", sizeMs: HOUR, time: "processing", aggregate: sum });
    assert.deepEqual((await run(mode, (f) => f.via(hourly()), [])).output, []);
    const started = Date.now();
    const result = await run(
      mode,
      (f) => f.via(hourly()),
      input,
      { sideOutputs: ["late"] },
    );
    const ended = Date.now();
    const totals: Record<string, [number, number]> = {};
    for (const r of result.output) {
      const { windowStart, windowEnd, n, total } = r.value;
      assert.equal(windowEnd - windowStart, HOUR);
      assert.equal(windowStart % HOUR, 0);
      assert.ok(windowStart <= ended && windowEnd > started, `window ${windowStart} is not now`);
      assert.equal(r.ts, windowEnd - 1);
      const t = totals[r.key!] ??= [0, 0];
      t[0] += n as number;
      t[1] += total as number;
    }
    assert.deepEqual(totals, { a: [3, 7], b: [1, 8], [huge]: [1, 16] });
    assert.deepEqual([result.sides.late, result.deadLetters], [[], []]);
  },
);

// 48 records over 8 keys and 3 seconds, shuffled within each second; markers between seconds.
const keyed: (StreamRecord<V> | { watermark: number })[] = [];
for (let sec = 0; sec < 3; sec++) {
  for (let i = 0; i < 16; i++) {
    const ts = sec * 1000 + ((i * 7) % 16) * 60;
    keyed.push(rec({ v: sec * 100 + i, user: `u${(i * 3 + sec) % 8}` }, ts, `k${i % 8}`));
  }
  keyed.push(wm(sec * 1000 + 999), wm((sec + 1) * 1000));
}

function expectedWindows(keyOf: (r: StreamRecord<V>) => string) {
  const acc = new Map<string, { key: string; s: number; n: number; total: number }>();
  for (const r of keyed) {
    if (!("value" in r)) continue;
    const key = keyOf(r), s = Math.floor(r.ts / 1000) * 1000;
    const w = acc.get(`${key}/${s}`) ?? { key, s, n: 0, total: 0 };
    w.n++;
    w.total += r.value.v;
    acc.set(`${key}/${s}`, w);
  }
  return [...acc.values()].map((w) => win(w.key, w.s, w.s + 1000, { n: w.n, total: w.total }));
}

modeTest(
  "window() at parallelism 2 after keyBy gives the same per-key windows as parallelism 1",
  async (mode) => {
    const tumbling = () => window({ type: "tumbling", sizeMs: 1000, aggregate: sum });
    for (
      const [name, expected, build] of [
        [
          "keyBy()",
          expectedWindows((r) => r.key!),
          (p: number) => (f: Parameters<Parameters<typeof run>[1]>[0]) =>
            f.keyBy().via(tumbling(), { parallelism: p }),
        ],
        [
          "keyBy(fn)",
          expectedWindows((r) => r.value.user!),
          (p: number) => (f: Parameters<Parameters<typeof run>[1]>[0]) =>
            f.keyBy((v: V) => v.user!).via(tumbling(), { parallelism: p }),
        ],
      ] as const
    ) {
      const one = await run(mode, build(1), keyed, MARKERS_ONLY);
      const two = await run(mode, build(2), keyed, MARKERS_ONLY);
      assert.deepEqual(sorted(one.output), sorted(expected), `${name} parallelism 1`);
      assert.deepEqual(sorted(two.output), sorted(expected), `${name} parallelism 2`);
      // Within a key, windows fire in end order at any parallelism.
      assert.deepEqual(byKey(two.output), byKey(one.output), name);
      assert.deepEqual([one.deadLetters, two.deadLetters], [[], []]);
    }
  },
);

// Fixed bug: slideMs > sizeMs (hopping windows with gaps) used to be accepted, and records in the
// gaps went to the "late" side output although the watermark had not reached them. Such a record
// belongs to no window, so the layout is now rejected when the pipeline is built and when a stage
// reference that bypassed the builder is opened.
modeTest(
  "window() sliding with slideMs > sizeMs is rejected with a ConfigError naming config.slideMs",
  async (mode) => {
    const config = { type: "sliding", sizeMs: 500, slideMs: 1000, aggregate: sum } as const;
    const message =
      /config\.slideMs: Must be ≤ sizeMs: records between windows would belong to no window/;
    assert.throws(() => window(config), { name: "ConfigError", message });
    const raw: StageRef<unknown, unknown> = {
      kind: "processor",
      module: new URL("../../../processors/window.ts", import.meta.url).href,
      export: "windowStage",
      config,
    };
    const input = [rec({ v: 1 }, 100, "a"), rec({ v: 2 }, 700, "a")];
    await assert.rejects(run(mode, (f) => f.via(raw), input), { message });
  },
);
