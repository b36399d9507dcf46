// Watermark alignment (stage option `align`): a stage fed by parallel inputs holds back the one
// that runs ahead in event time, until the slowest active input catches up.
import assert from "node:assert/strict";
import {
  collect,
  type Collector,
  ConfigError,
  map,
  memoryDeadLetters,
  memoryStateBackend,
  type Pipeline,
  pipeline,
  type RunSummary,
  stage,
  type StageOptions,
  window,
} from "../../mod.ts";
import type { DriftReport, Reading } from "./fixtures/alignment_stages.ts";

const fixtures = new URL("./fixtures/alignment_stages.ts", import.meta.url);
const runtimeFixtures = new URL("./fixtures/runtime_stages.ts", import.meta.url);

const MODES = ["inline", "workers"] as const;
type Mode = typeof MODES[number];

/** Records per batch (and per pull) everywhere, so that bounds can be counted in batches. */
const BATCH = 50;
const KEYS = 10;
/** `maxDriftMs` of most tests; records are 1 ms apart in event time. */
const DRIFT = 200;
/**
 * Every run is expected to take a second or two: one that takes longer than this is stuck (an
 * input held back for good), and is stopped and failed rather than left to hang the suite.
 */
const RUN_MS = 15_000;
/** How long a stuck run may take to drain once stopped, before it is killed. */
const STOP_MS = 2000;

interface Skew {
  /** Records per source instance (the source's parallelism is the length). */
  counts: number[];
  /** Pause before each pull, per instance. */
  delaysMs: number[];
  /** Silence after the last record, per instance, before one `afterStall` record and the end. */
  stallsMs?: number[];
  /** Event time between records, per instance (default 1 ms). */
  stepsMs?: number[];
}

function skewed({ counts, delaysMs, stallsMs = [], stepsMs = [] }: Skew) {
  const config = { counts, delaysMs, stallsMs, stepsMs, perPull: BATCH, keys: KEYS };
  return stage<never, Reading>(fixtures, config, { kind: "source", export: "skewedSource" });
}

function probe(counts: number[]) {
  return stage<Reading, DriftReport>(fixtures, { counts }, { export: "driftProbe" });
}

/** Builds source (one instance per count) → probe → collector. */
function probed(
  mode: Mode,
  skew: Skew,
  options: StageOptions,
  extra: { stopTimeoutMs?: number; heartbeatMs?: number } = {},
) {
  const out = collect<DriftReport>();
  const p = pipeline({
    mode,
    signals: false,
    defaults: { batchSize: BATCH },
    stopTimeoutMs: STOP_MS,
    ...extra,
  });
  p.from(skewed(skew), { parallelism: skew.counts.length })
    .via(probe(skew.counts), { name: "probe", ...options })
    .to(out.sink);
  return { p, out };
}

async function report(out: Collector<DriftReport>): Promise<DriftReport> {
  const values = await out.values();
  await out.clear();
  assert.equal(values.length, 1, "the probe reports once, at the end");
  const got = values[0]!;
  // JSON turns a lead never measured (-Infinity) into null, which compares as 0.
  assert.equal(typeof got.receiverLead, "number", "the probe measured the receiver's lead");
  return got;
}

/** Runs `p`, failing (after stopping it) if it has not finished within `ms`. */
async function finishWithin(p: Pipeline, ms = RUN_MS, what = ""): Promise<RunSummary> {
  const run = p.run();
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<"late">((resolve) => timer = setTimeout(() => resolve("late"), ms));
  const first = await Promise.race([run, late]);
  clearTimeout(timer);
  if (first === "late") {
    await p.stop().catch(() => {});
    await run.catch(() => {});
    assert.fail(`${what ? `${what}: ` : ""}the run did not finish within ${ms} ms`);
  }
  return first;
}

for (const mode of MODES) {
  Deno.test(`StageOptions.align keeps a fast input within maxDriftMs of a slow one (${mode})`, async () => {
    // Instance 0 pulls a batch every 10 ms, instance 1 as fast as it is let.
    const skew = { counts: [3000, 3000], delaysMs: [10, 0] };

    const free = probed(mode, skew, {});
    await finishWithin(free.p);
    const unaligned = await report(free.out);
    assert.deepEqual(unaligned.received, [3000, 3000]);
    // Without alignment the fast input reaches its end while the slow one has barely started.
    assert.ok(unaligned.receiverLead > 1500, `unaligned lead ${unaligned.receiverLead}`);

    const held = probed(mode, skew, { align: { maxDriftMs: DRIFT } });
    await finishWithin(held.p);
    const aligned = await report(held.out);
    assert.deepEqual(aligned.received, [3000, 3000], "nothing is lost");
    assert.equal(aligned.outOfOrder, 0, "held-back work keeps its order");
    // A batch is let through while its input's watermark is within maxDriftMs of the slow one's;
    // the records it carries reach at most one more batch further.
    assert.ok(
      aligned.receiverLead <= DRIFT + 2 * BATCH,
      `aligned lead ${aligned.receiverLead} > ${DRIFT + 2 * BATCH}`,
    );
  });
}

Deno.test("StageOptions.align stops the held input's sender once its credit is spent", async () => {
  // What the fast source may pull beyond the slow one: the drift and the batch let through at
  // its edge, the batches in flight to the stage (`capacity`, held there unacked), one sealed and
  // waiting for credit, one being pulled; and a batch to spare.
  const bound = (capacity: number) => DRIFT + (capacity + 4) * BATCH;
  const skew = { counts: [2000, 2000], delaysMs: [10, 0] };
  for (const mode of MODES) {
    const leads: number[] = [];
    for (const capacity of [2, 16]) {
      const { p, out } = probed(mode, skew, { align: { maxDriftMs: DRIFT }, capacity });
      await finishWithin(p);
      const { senderLead, received } = await report(out);
      assert.deepEqual(received, [2000, 2000]);
      assert.equal(typeof senderLead, "number", "the probe measured the sender's lead");
      assert.ok(senderLead <= bound(capacity), `${mode}, capacity ${capacity}: lead ${senderLead}`);
      leads.push(senderLead);
    }
    // The credit is what stops it: with more, the fast source gets further before it stops.
    assert.ok(leads[1]! > bound(2), `${mode}: lead ${leads[1]} with capacity 16`);
  }
});

Deno.test("StageOptions.align holds each of several fast inputs to the slowest one", async () => {
  // Three inputs: one slow, one at medium speed, one fast.
  const skew = { counts: [3000, 3000, 3000], delaysMs: [10, 3, 0] };
  const { p, out } = probed("workers", skew, { align: { maxDriftMs: DRIFT } });
  await finishWithin(p);
  const got = await report(out);
  assert.deepEqual(got.received, [3000, 3000, 3000]);
  assert.equal(got.outOfOrder, 0);
  assert.ok(got.receiverLead <= DRIFT + 2 * BATCH, `lead ${got.receiverLead}`);
});

type WindowOut = {
  windowStart: number;
  windowEnd: number;
  key?: string;
  sum: number;
  count: number;
};

/** The 100 ms tumbling windows of the skewed source's records, counted here. */
function expectedWindows(counts: number[]): WindowOut[] {
  const byWindow = new Map<string, WindowOut>();
  counts.forEach((count, src) => {
    for (let seq = 0; seq < count; seq++) {
      const key = `k${seq % KEYS}`, windowStart = Math.floor(seq / 100) * 100;
      const id = `${windowStart}/${key}`;
      const w = byWindow.get(id) ??
        { windowStart, windowEnd: windowStart + 100, key, sum: 0, count: 0 };
      w.sum += (seq * (src + 1)) % 7;
      w.count++;
      byWindow.set(id, w);
    }
  });
  return sortWindows([...byWindow.values()]);
}

function sortWindows(list: WindowOut[]): WindowOut[] {
  return list.sort((a, b) =>
    a.windowStart - b.windowStart || (a.key ?? "").localeCompare(b.key ?? "")
  );
}

Deno.test("StageOptions.align does not change what a keyed window computes", async () => {
  // The slow instance has fewer records: it ends while the fast one still runs.
  const counts = [1500, 2500];
  const expected = expectedWindows(counts);
  for (const mode of MODES) {
    for (const align of [undefined, { maxDriftMs: 0 }, { maxDriftMs: 150 }]) {
      const out = collect<WindowOut>();
      const dead = memoryDeadLetters();
      const p = pipeline({
        mode,
        signals: false,
        defaults: { batchSize: BATCH },
        deadLetter: dead,
        stopTimeoutMs: STOP_MS,
      });
      p.from(skewed({ counts, delaysMs: [5, 0] }), { parallelism: 2 })
        .keyBy()
        .via(
          window({
            type: "tumbling",
            sizeMs: 100,
            aggregate: { sum: { op: "sum", field: "n" }, count: { op: "count" } },
          }),
          { align },
        )
        .to(out.sink);
      await finishWithin(p);
      const got = sortWindows(await out.values());
      await out.clear();
      const what = `${mode}, align ${JSON.stringify(align)}`;
      assert.deepEqual(got, expected, what);
      assert.deepEqual(dead.entries, [], `${what}: no record came late`);
    }
  }
});

Deno.test("StageOptions.align lets go of an input that ended: a short input holds nothing back", async () => {
  // Instance 0 starts late, sends 20 records and ends; instance 1 has 3000. An input only goes
  // idle after a minute here, so only its end can let the other go within the time allowed.
  const skew = { counts: [20, 3000], delaysMs: [50, 0] };
  for (const mode of MODES) {
    const { p, out } = probed(mode, skew, {
      align: { maxDriftMs: 100 },
      idleTimeoutMs: 60_000,
    });
    await finishWithin(p);
    const got = await report(out);
    assert.deepEqual(got.received, [20, 3000], mode);
    assert.equal(got.outOfOrder, 0, mode);
  }
});

Deno.test("StageOptions.align lets go of an input silent for idleTimeoutMs, not before", async () => {
  // Instance 0 sends 10 records, goes silent for 1 s without ending, then sends one more
  // (marked) and ends. Instance 1's 2000 records are far ahead of instance 0's ten.
  const skew = { counts: [10, 2000], delaysMs: [0, 0], stallsMs: [1000, 0] };
  const align = { maxDriftMs: 100 };
  for (const mode of MODES) {
    // Idle after 200 ms: instance 1 is let go long before instance 0 speaks again.
    const idle = probed(mode, skew, { align, idleTimeoutMs: 200 });
    await finishWithin(idle.p);
    const released = await report(idle.out);
    assert.deepEqual(released.received, [11, 2000], mode);
    assert.equal(released.beforeStallMarker, 2000, `${mode}: all of input 1 came during the stall`);

    // With the default timeout (10 s) the silent input still counts: input 1 waits for it.
    const busy = probed(mode, skew, { align });
    await finishWithin(busy.p);
    const held = await report(busy.out);
    assert.deepEqual(held.received, [11, 2000], mode);
    assert.ok(
      held.beforeStallMarker <= 100 + 3 * BATCH,
      `${mode}: ${held.beforeStallMarker} records of input 1 came during the stall`,
    );
  }
});

Deno.test("Pipeline.stop() drains an aligned stage while it holds an input back", async () => {
  // Instance 0 goes silent for a minute (and counts as active for 10 s): instance 1 is held back.
  // Stopped, a source ends without a last watermark: only its end lets instance 1 go.
  const skew = { counts: [10, 3000], delaysMs: [0, 0], stallsMs: [60_000, 0] };
  for (const mode of MODES) {
    const { p, out } = probed(mode, skew, { align: { maxDriftMs: 100 } }, {
      stopTimeoutMs: 5000,
      heartbeatMs: 50,
    });
    const running = p.run();
    const started = Date.now();
    // Wait until the probe has the records it takes before instance 1 is held back.
    while ((p.counters().probe?.instances[0]?.in ?? 0) < 150 && Date.now() - started < 5000) {
      await new Promise((r) => setTimeout(r, 10));
    }
    const stopping = Date.now();
    await p.stop();
    const summary = await running; // a forced stop would reject
    assert.ok(Date.now() - stopping < 4000, `${mode}: stop() took ${Date.now() - stopping} ms`);
    const got = await report(out);
    // Out of credit, the held source stopped pulling long before its end.
    assert.ok(got.received[1]! < 1000, `${mode}: instance 1 sent ${got.received[1]}`);
    // What was pulled was delivered: the held batches too.
    assert.equal(got.received[0]! + got.received[1]!, summary.stages.skewed?.out, mode);
    assert.equal(got.outOfOrder, 0, mode);
  }
});

Deno.test("An aligned stateful stage that crashes resumes from its checkpoint: sums stay exact", async () => {
  const counts = [3000, 3000];
  const expected: Record<string, number> = {};
  counts.forEach((count, src) => {
    for (let seq = 0; seq < count; seq++) {
      expected[`k${seq % KEYS}`] = (expected[`k${seq % KEYS}`] ?? 0) + (seq * (src + 1)) % 7;
    }
  });
  for (const mode of MODES) {
    const marker = (await Deno.makeTempDir()) + "/marker";
    const out = collect<{ key: string; sum: number }>();
    // Fails once, on the fast instance's record 1500: by then it has been held back many times.
    const sum = stage<Reading, { key: string; sum: number }>(
      runtimeFixtures,
      { at: 1_001_500, marker },
      { export: "crashingSum" },
    );
    const p = pipeline({
      mode,
      signals: false,
      defaults: { batchSize: BATCH },
      state: memoryStateBackend(),
      checkpointMs: 50,
      stopTimeoutMs: STOP_MS,
    });
    p.from(skewed({ counts, delaysMs: [10, 0] }), { parallelism: 2 })
      .keyBy()
      .via(sum, {
        name: "sum",
        align: { maxDriftMs: DRIFT },
        permissions: { read: [marker], write: [marker] },
      })
      .to(out.sink);
    const summary = await finishWithin(p);
    assert.equal(summary.stages.sum?.restarts, 1, `${mode}: the stage really crashed once`);
    const got = Object.fromEntries((await out.values()).map((v) => [v.key, v.sum]));
    await out.clear();
    assert.deepEqual(got, expected, mode);
  }
});

Deno.test("Pipeline.run() rejects a bad align option with a ConfigError naming its path", async () => {
  const bad: [StageOptions | undefined, StageOptions | undefined, RegExp][] = [
    [
      { align: { maxDriftMs: -1 } },
      undefined,
      /options\.align\.maxDriftMs: Number must be greater than/,
    ],
    [{ align: { maxDriftMs: Infinity } }, undefined, /options\.align\.maxDriftMs:/],
    [
      { align: { maxDrift: 5 } } as unknown as StageOptions,
      undefined,
      /options\.align: Unrecognized key\(s\) in object: 'maxDrift'/,
    ],
    [
      undefined,
      { align: { maxDriftMs: -1 } },
      /options\.defaults\.align\.maxDriftMs: Number must be greater than/,
    ],
  ];
  for (const [options, defaults, message] of bad) {
    const out = collect<DriftReport>();
    const p = pipeline({ mode: "inline", signals: false, defaults })
      .from(skewed({ counts: [10], delaysMs: [0] }))
      .via(probe([10]), options)
      .to(out.sink);
    await assert.rejects(() => p.run(), (e: unknown) => {
      assert.ok(e instanceof ConfigError, `not a ConfigError: ${e}`);
      assert.match(e.message, message);
      return true;
    });
    await out.clear();
  }
  // The same option in a stage reference's own defaults is checked too.
  const out = collect<unknown>();
  const p = pipeline({ mode: "inline", signals: false })
    .from(skewed({ counts: [10], delaysMs: [0] }))
    .keyBy()
    .via(window({ type: "tumbling", sizeMs: 10, aggregate: { n: { op: "count" } } }, {
      align: { maxDriftMs: Number.NaN },
    }))
    .to(out.sink);
  await assert.rejects(() => p.run(), (e: unknown) => {
    assert.ok(e instanceof ConfigError, `not a ConfigError: ${e}`);
    assert.match(e.message, /stage "window": options\.align\.maxDriftMs:/);
    return true;
  });
  await out.clear();
});

Deno.test("StageOptions.align on the stage that receives the inputs also bounds the stages fused behind it", async () => {
  // The map at parallelism 1 receives both source instances; the probe is fused behind it and
  // sees the records in the order the map let them through.
  const counts = [3000, 3000];
  for (const mode of MODES) {
    const out = collect<DriftReport>();
    const p = pipeline({
      mode,
      signals: false,
      defaults: { batchSize: BATCH },
      stopTimeoutMs: STOP_MS,
    });
    p.from(skewed({ counts, delaysMs: [10, 0] }), { parallelism: 2 })
      .via(map((r: Reading) => r), { align: { maxDriftMs: DRIFT } })
      .via(probe(counts), { name: "probe" })
      .to(out.sink);
    const summary = await finishWithin(p);
    assert.equal(summary.stages.probe?.in, 6000);
    const got = await report(out);
    assert.deepEqual(got.received, [3000, 3000], mode);
    assert.equal(got.outOfOrder, 0, mode);
    assert.ok(got.receiverLead <= DRIFT + 2 * BATCH, `${mode}: lead ${got.receiverLead}`);
  }
});

Deno.test("StageOptions.align asked by a stage fused behind the receiving one applies to the chain's inputs", async () => {
  // The probe is fused behind the map, which receives both source instances; the tighter of
  // the two drifts asked for wins.
  const counts = [3000, 3000];
  for (const mapAlign of [undefined, { maxDriftMs: 2000 }]) {
    const out = collect<DriftReport>();
    const p = pipeline({
      mode: "workers",
      signals: false,
      defaults: { batchSize: BATCH },
      stopTimeoutMs: STOP_MS,
    });
    p.from(skewed({ counts, delaysMs: [10, 0] }), { parallelism: 2 })
      .via(map((r: Reading) => r), { align: mapAlign })
      .via(probe(counts), { name: "probe", align: { maxDriftMs: DRIFT } })
      .to(out.sink);
    await finishWithin(p);
    const got = await report(out);
    const what = `map align ${JSON.stringify(mapAlign)}`;
    assert.deepEqual(got.received, [3000, 3000], what);
    assert.equal(got.outOfOrder, 0, what);
    assert.ok(got.receiverLead <= DRIFT + 2 * BATCH, `${what}: lead ${got.receiverLead}`);
  }
});

/**
 * Runs a keyed window with `align` on one dense input (0.1 ms of event time per record) and
 * `fast` sparse ones (1 ms per record) that it holds back, with timed checkpoints too rare to
 * matter: only checkpoints asked for under load keep the stage going.
 */
async function denseWindow(mode: Mode, fast: number): Promise<void> {
  const skew = {
    counts: [2000, ...Array.from({ length: fast }, () => 3000)],
    delaysMs: [0, ...Array.from({ length: fast }, () => 0)],
    stepsMs: [0.1, ...Array.from({ length: fast }, () => 1)],
  };
  const out = collect<WindowOut>();
  const p = pipeline({
    mode,
    signals: false,
    defaults: { batchSize: BATCH },
    checkpointMs: 30_000,
    stopTimeoutMs: STOP_MS,
  });
  p.from(skewed(skew), { parallelism: 1 + fast })
    .keyBy()
    .via(
      window({
        type: "tumbling",
        sizeMs: 100,
        aggregate: { sum: { op: "sum", field: "n" }, count: { op: "count" } },
      }),
      { name: "window", align: { maxDriftMs: 20 } },
    )
    .to(out.sink);
  const summary = await finishWithin(p, 5000, mode);
  await out.clear();
  assert.equal(summary.stages.window?.in, 2000 + 3000 * fast, mode);
}

Deno.test("StageOptions.align on a stateful stage with two inputs needs no timed checkpoint", async () => {
  // Each input's credit (8 batches) is enough to ask for a checkpoint (8 with two inputs).
  for (const mode of MODES) await denseWindow(mode, 1);
});

Deno.test("StageOptions.align on a stateful stage with three inputs needs no timed checkpoint", async () => {
  // With three inputs a stateful task asks for a checkpoint once 12 processed batches wait for
  // one (`inputs × capacity / 2`). While two inputs are held back (parked batches are not
  // processed, so never counted), the one that may go on spends its 8 credits and stops: up to
  // c9b4cb6 nothing then asked for a checkpoint, and the stage stalled until the timed one
  // every 8 batches (~3 × checkpointMs here). A task out of work with held input now asks for
  // one itself (a29a7d8).
  for (const mode of MODES) await denseWindow(mode, 2);
});
