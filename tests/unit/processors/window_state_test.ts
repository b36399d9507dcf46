import assert from "node:assert/strict";
import { window } from "../../../processors/window.ts";
import { windowStage } from "../../../processors/window.ts";
import { harness, rawRef, rec } from "./_harness.ts";

const count = { n: { op: "count" as const } };

Deno.test("window() processing time assigns by ctx.now() and fires on ticks", async () => {
  const h = await harness(
    window({ type: "tumbling", sizeMs: 1000, time: "processing", aggregate: count }),
    {
      now: 100,
    },
  );
  await h.push([rec(1, 50_000, "a"), rec(1, -7, "a")]);
  assert.deepEqual(await h.advanceWatermark(1_000_000), []);
  assert.deepEqual(await h.tick(999), []);
  h.now = 1000;
  await h.push([rec(1, 0, "a")]);
  assert.deepEqual((await h.tick(1000)).map((r) => [r.value.windowStart, r.value.n, r.ts]), [[
    0,
    2,
    999,
  ]]);
  assert.deepEqual((await h.flush()).map((r) => [r.value.windowStart, r.value.n]), [[1000, 1]]);
});

Deno.test("window() processing-time sessions close after a quiet gap", async () => {
  const h = await harness(
    window({ type: "session", gapMs: 100, time: "processing", aggregate: count }),
  );
  await h.push([rec(1, 0, "s")]);
  h.now = 80;
  await h.push([rec(1, 0, "s")]);
  assert.deepEqual(await h.tick(179), []);
  assert.deepEqual(
    (await h.tick(180)).map((r) => [r.value.windowStart, r.value.windowEnd, r.value.n]),
    [[0, 180, 2]],
  );
});

Deno.test("window() computes reduce, topK, distinctCount, min and max per window", async () => {
  const h = await harness(window<{ sku: string; price: number }>({
    type: "tumbling",
    sizeMs: 1000,
    aggregate: {
      skus: {
        op: "reduce",
        fn: (acc: string[], v: string) => [...acc, v],
        initial: [],
        field: "sku",
      },
      top: { op: "topK", field: "sku", k: 1 },
      distinct: { op: "distinctCount", field: "sku" },
      lo: { op: "min", field: "price" },
      hi: { op: "max", field: "price" },
    },
  }));
  await h.push([
    rec({ sku: "a", price: 3 }),
    rec({ sku: "b", price: 1 }),
    rec({ sku: "a", price: 2 }),
  ]);
  const [out] = await h.flush();
  assert.deepEqual(out?.value, {
    windowStart: 0,
    windowEnd: 1000,
    skus: ["a", "b", "a"],
    top: [{ value: "a", count: 2 }],
    distinct: 2,
    lo: 1,
    hi: 3,
  });
});

Deno.test("window() session windows merge reduce accumulators with the merge function", async () => {
  const h = await harness(window({
    type: "session",
    gapMs: 10,
    aggregate: {
      total: {
        op: "reduce",
        fn: (acc: number, v: number) => acc + v,
        initial: 0,
        merge: (a: number, b: number) => a + b,
      },
    },
  }));
  await h.push([rec(1, 0), rec(2, 15), rec(4, 8)]);
  assert.deepEqual((await h.flush()).map((r) => r.value.total), [7]);
});

Deno.test("window() dead-letters a record whose reducer throws and leaves the window as it was", async () => {
  const h = await harness(window({
    type: "sliding",
    sizeMs: 100,
    slideMs: 50,
    aggregate: {
      n: { op: "count" },
      sum: { op: "reduce", fn: (acc: number, v: { x: number }) => acc + v.x, initial: 0 },
    },
  }));
  await h.push([rec({ x: 1 }, 60), rec(null as unknown as { x: number }, 70)]);
  assert.equal(h.dead.length, 1);
  assert.deepEqual((await h.flush()).map((r) => [r.value.n, r.value.sum]), [[1, 1], [1, 1]]);
});

Deno.test("window() restored from a snapshot into a fresh instance gives the same result", async () => {
  const ref = window({
    type: "sliding",
    sizeMs: 1000,
    slideMs: 500,
    allowedLatenessMs: 200,
    aggregate: {
      n: { op: "count" },
      top: { op: "topK", field: "k", k: 2 },
      avg: { op: "avg", field: "v" },
    },
  });
  const input = [
    rec({ k: "x", v: 1 }, 100, "a"),
    rec({ k: "y", v: 3 }, 700, "a"),
    rec({ k: "x", v: 5 }, 900, "b"),
  ];
  const rest = [rec({ k: "x", v: 7 }, 1100, "a"), rec({ k: "z", v: 9 }, 950, "a")];
  const a = await harness(ref);
  await a.push(input);
  await a.advanceWatermark(1000);
  const b = await harness(ref, { restore: a.snapshot(), now: a.now });
  b.watermark = a.watermark;
  for (const h of [a, b]) {
    await h.push(rest);
    await h.advanceWatermark(1600);
    await h.flush();
  }
  assert.deepEqual(b.emitted, a.emitted.slice(a.emitted.length - b.emitted.length));
  assert.ok(b.emitted.length >= 3);
});

Deno.test("window() rejects bad configs with a ConfigError naming the zod path", async () => {
  const w = (o: unknown) => () => window(o as Parameters<typeof window>[0]);
  assert.throws(w({ type: "tumbling", sizeMs: 0, aggregate: count }), {
    name: "ConfigError",
    message: /^Cannot configure stage "window": config\.sizeMs: Number must be greater than 0$/,
  });
  assert.throws(w({ type: "hopping", sizeMs: 1, aggregate: count }), { message: /config\.type: / });
  assert.throws(w({ type: "tumbling", sizeMs: "1s", aggregate: count }), {
    message: /config\.sizeMs: Expected number, received string/,
  });
  assert.throws(w({ type: "tumbling", sizeMs: 1000 }), { message: /config\.aggregate: / });
  assert.throws(w({ type: "tumbling", sizeMs: 1000, aggregate: {} }), {
    message: /at least one aggregate/,
  });
  assert.throws(w({ type: "tumbling", sizeMs: 1, size: 2, aggregate: count }), {
    message: /Unrecognized key\(s\) in object: 'size'/,
  });
  assert.throws(w({ type: "sliding", sizeMs: 1000, aggregate: count }), {
    message: /config\.slideMs: /,
  });
  assert.throws(w({ type: "sliding", sizeMs: 500, slideMs: 1000, aggregate: count }), {
    name: "ConfigError",
    message:
      /config\.slideMs: Must be ≤ sizeMs: records between windows would belong to no window$/,
  });
  assert.throws(w({ type: "sliding", sizeMs: 10_000, slideMs: 1, aggregate: count }), {
    message: /config\.slideMs: Too small: over 1000 windows per record/,
  });
  assert.throws(w({ type: "tumbling", sizeMs: 1, aggregate: { windowEnd: { op: "count" } } }), {
    message: /config\.aggregate\.windowEnd: Reserved name/,
  });
  assert.throws(w({ type: "tumbling", sizeMs: 1, aggregate: { t: { op: "sum", field: 3 } } }), {
    message: /config\.aggregate\.t\.field: /,
  });
  assert.throws(
    w({ type: "tumbling", sizeMs: 1, aggregate: { t: { op: "median", field: "x" } } }),
    {
      message: /config\.aggregate\.t\.op: /,
    },
  );
  assert.throws(
    w({ type: "tumbling", sizeMs: 1, time: "processing", allowedLatenessMs: 5, aggregate: count }),
    {
      message: /config\.allowedLatenessMs: Only applies to event time/,
    },
  );
  assert.throws(
    w({
      type: "session",
      gapMs: 5,
      aggregate: { r: { op: "reduce", fn: (a: number) => a, initial: 0 } },
    }),
    {
      message: /config\.aggregate\.r\.merge: Required/,
    },
  );
  await assert.rejects(
    () => harness(rawRef("window.ts", "windowStage", { type: "session", aggregate: count })),
    {
      message: /config\.gapMs: /,
    },
  );
  assert.equal(windowStage.stateful, true);
});

Deno.test("window() sliding accepts slideMs = sizeMs (tumbling) and rejects a gap even unbuilt", async () => {
  const h = await harness(window({ type: "sliding", sizeMs: 100, slideMs: 100, aggregate: count }));
  await h.push([rec(1, 50), rec(2, 150), rec(3, 199)]);
  assert.deepEqual((await h.flush()).map((r) => [r.value.windowStart, r.value.n]), [[0, 1], [
    100,
    2,
  ]]);
  const gap = { type: "sliding", sizeMs: 100, slideMs: 101, aggregate: count };
  await assert.rejects(() => harness(rawRef("window.ts", "windowStage", gap)), {
    name: "ConfigError",
    message: /config\.slideMs: Must be ≤ sizeMs/,
  });
});
