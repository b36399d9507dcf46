// Seventh review: event time under faults and changes. Windows fire complete and once per key and
// window, never from one parallel input's clock; watermarks hold, advance and never go back across
// restarts of a stage above a window, of the window stage itself and of a parallel source
// instance, across a rescale, with `align`, with idle inputs and with `outOfOrdernessMs`; inline
// and workers give the same windows. Expected windows are computed here from the scripted source
// (fixtures/review7_event_time_stages.ts). Tests marked "(was a bug)" failed on the code as
// reviewed (9eafe64); each says what is expected and what happened.
import assert from "node:assert/strict";
import {
  collect,
  type Collector,
  memoryDeadLetters,
  type Pipeline,
  pipeline,
  type RunSummary,
  stage,
  type StageRef,
  type StreamRecord,
  window,
} from "../../mod.ts";
import {
  type InstanceScript,
  script,
  type Tick,
  type WmReport,
} from "./fixtures/review7_event_time_stages.ts";
import { exists } from "./fixtures/_once.ts";
import { sleep, until, within } from "./_wait.ts";
import { Sender } from "../../actors/_sender.ts";
import { Token } from "../../actors/_token.ts";
import type { ToReceiver } from "../../actors/_protocol.ts";

const fixtures = new URL("./fixtures/review7_event_time_stages.ts", import.meta.url);
const MODES = ["inline", "workers"] as const;
type Mode = typeof MODES[number];
const KEYS = 4;
const SIZE = 100;
/** A run that takes longer than this is stuck: it is stopped and the test fails. */
const RUN_MS = 20_000;
/**
 * Batches of one pull (50 records), where a source instance or the stage after it fails and
 * windows must count each record once: a pull split over two batches, which a checkpoint below
 * held only the first of, would be replayed whole (at-least-once: README, Supervision).
 */
const PULLS = { batchSize: 50 };

type Win = { windowStart: number; windowEnd: number; key?: string; count: number; sum: number };
/** Per `key@windowStart`: the results fired, in order. */
type Fires = Map<string, string[]>;

function scripted(instances: InstanceScript[]) {
  return stage<never, Tick>(fixtures, { instances, keys: KEYS }, {
    kind: "source",
    export: "scripted",
  });
}

/** The pass-through hop: fails once on `value[field] === equals` (per marker), or closes slowly. */
function hop<T>(
  cfg: { field?: string; equals?: number | string; marker?: string; closeMs?: number },
): StageRef<T, T> {
  return stage<T, T>(fixtures, cfg, { export: "hop" });
}

/** Tumbling windows of SIZE ms counting records and summing `n`. */
function tumbling(allowedLatenessMs = 0): StageRef<Tick, Win> {
  return window<Tick>({
    type: "tumbling",
    sizeMs: SIZE,
    allowedLatenessMs,
    aggregate: { count: { op: "count" }, sum: { op: "sum", field: "n" } },
  }) as unknown as StageRef<Tick, Win>;
}

const rw = (dir: string) => ({ permissions: { read: [dir], write: [dir] } });
const result = (count: number, sum: number) => `${count}/${sum}`;

function firesOf(values: Win[]): Fires {
  const fires: Fires = new Map();
  for (const v of values) {
    const id = `${v.key}@${v.windowStart}`;
    fires.set(id, [...(fires.get(id) ?? []), result(v.count, v.sum)]);
  }
  return fires;
}

/** Each window's complete result: every record of every instance in its window, none late. */
function complete(instances: InstanceScript[]): Map<string, string> {
  const acc = new Map<string, [number, number]>();
  instances.forEach((cfg, src) => {
    for (const r of script(cfg, src, KEYS)) {
      const id = `${r.key}@${Math.floor(r.ts / SIZE) * SIZE}`;
      const [c, s] = acc.get(id) ?? [0, 0];
      acc.set(id, [c + 1, s + r.value.n]);
    }
  });
  return new Map([...acc].map(([id, [c, s]]) => [id, result(c, s)]));
}

/**
 * What a tumbling window with `lateness` fires over one instance's script pulled `perPull` at a
 * time (a stall or gate cuts a pull short), with the source's watermark `max ts − ooo` after each
 * pull: per window the results in order, and the ids sent to the late output.
 */
function simulate(
  cfg: InstanceScript,
  opts: { lateness: number; ooo: number },
): { fires: Fires; late: number[] } {
  const items = script(cfg, 0, KEYS);
  const perPull = cfg.perPull ?? 50;
  const cuts = [cfg.stall?.at, ...(cfg.gates ?? []).map((g) => g.at)].filter((x) =>
    x !== undefined
  );
  const open = new Map<string, { e: number; c: number; s: number; fired: boolean }>();
  const fires: Fires = new Map();
  const late: number[] = [];
  const emit = (id: string, w: { c: number; s: number }) =>
    fires.set(id, [...(fires.get(id) ?? []), result(w.c, w.s)]);
  let wm = -Infinity, maxTs = -Infinity;
  const advance = (to: number, all: boolean) => {
    for (const [id, w] of open) {
      if (!w.fired && (all || w.e <= to)) {
        emit(id, w);
        w.fired = true;
      }
      if (all || w.e + opts.lateness <= to) open.delete(id);
    }
  };
  for (let at = 0; at < items.length;) {
    let end = Math.min(items.length, at + perPull);
    for (const cut of cuts) if (at < cut!) end = Math.min(end, cut!);
    for (const r of items.slice(at, end)) {
      maxTs = Math.max(maxTs, r.ts);
      const start = Math.floor(r.ts / SIZE) * SIZE;
      const id = `${r.key}@${start}`;
      if (start + SIZE + opts.lateness <= wm) {
        late.push(r.value.id);
        continue;
      }
      const w = open.get(id) ?? { e: start + SIZE, c: 0, s: 0, fired: false };
      open.set(id, w);
      w.c++;
      w.s += r.value.n;
      if (w.e <= wm) {
        w.fired = true;
        emit(id, w);
      }
    }
    at = end;
    if (maxTs - opts.ooo > wm) {
      wm = maxTs - opts.ooo;
      advance(wm, false);
    }
  }
  advance(Infinity, true);
  return { fires, late };
}

/**
 * Fails, naming them, the windows whose fires are not exactly their complete result, once.
 * `duplicates`: a window may fire its complete result more than once (a restored window stage
 * fires again what it fired after its last checkpoint).
 */
function assertComplete(
  fires: Fires,
  expected: Map<string, string>,
  what: string,
  opts: { duplicates?: boolean } = {},
): void {
  const wrong: string[] = [];
  for (const [id, want] of expected) {
    const got = fires.get(id) ?? [];
    const ok = got.length > 0 && got.every((r) => r === want) &&
      (opts.duplicates || got.length === 1);
    if (!ok) wrong.push(`${id}: ${JSON.stringify(got)} (want ${want})`);
  }
  for (const id of fires.keys()) if (!expected.has(id)) wrong.push(`${id}: not expected`);
  assert.deepEqual(wrong.slice(0, 8), [], `${what}: ${wrong.length} windows wrong`);
}

/** Runs `p`; stops it and fails if it has not ended within `ms`. */
async function finish(p: Pipeline, what: string, ms = RUN_MS): Promise<RunSummary> {
  const running = p.run();
  const first = await within(running, ms);
  if (first === "timed out") {
    await p.stop().catch(() => {});
    await running.catch(() => {});
    assert.fail(`${what}: the run did not end within ${ms} ms`);
  }
  return first;
}

async function drain<T>(c: Collector<T>): Promise<T[]> {
  const values = await c.values();
  await c.clear();
  return values;
}

// ---------------------------------------------------------------------------------------------
// Without faults: out-of-order input within `outOfOrdernessMs` at parallel sources is never late,
// and windows fire once each; the same in both modes.

Deno.test("outOfOrdernessMs at parallel sources: keyed windows on two instances fire complete and once; inline and workers agree", async () => {
  const instances: InstanceScript[] = [
    { count: 2000, startTs: 1000, jitterMs: 40, delayMs: 2 },
    { count: 2000, startTs: 1000, jitterMs: 40, delayMs: 0 },
  ];
  const expected = complete(instances);
  const results: string[][] = [];
  for (const mode of MODES) {
    const out = collect<Win>();
    const dead = memoryDeadLetters();
    const p = pipeline({
      mode,
      signals: false,
      outOfOrdernessMs: 40,
      deadLetter: dead,
      stopTimeoutMs: 3000,
    });
    p.from(scripted(instances), { parallelism: 2 })
      .keyBy()
      .via(tumbling(), { name: "win", parallelism: 2 })
      .to(out.sink);
    await finish(p, mode);
    const values = await drain(out);
    assertComplete(firesOf(values), expected, mode);
    assert.deepEqual(dead.entries.map((e) => e.record.value), [], `${mode}: nothing is late`);
    results.push(values.map((v) => JSON.stringify(v)).sort());
  }
  assert.deepEqual(results[0], results[1], "inline and workers fire the same windows");
});

Deno.test("outOfOrdernessMs and allowedLatenessMs: late records go to the side output, late updates re-fire, exactly as computed; inline and workers agree", async () => {
  // Records up to 120 ms out of order, the source vouching for 20: some are late.
  const cfg: InstanceScript = { count: 1500, startTs: 1000, jitterMs: 120, perPull: 25 };
  for (const lateness of [0, 30]) {
    const want = simulate(cfg, { lateness, ooo: 20 });
    assert.ok(want.late.length > 0, "the script has late records");
    for (const mode of MODES) {
      const out = collect<Win>();
      const late = collect<Tick>();
      const p = pipeline({ mode, signals: false, outOfOrdernessMs: 20, stopTimeoutMs: 3000 });
      const w = p.from(scripted([cfg]), { fuse: false })
        .keyBy()
        .via(tumbling(lateness), { name: "win" });
      w.to(out.sink);
      w.sideOutput<Tick>("late").to(late.sink);
      await finish(p, mode);
      const what = `${mode}, allowedLatenessMs ${lateness}`;
      assert.deepEqual(
        Object.fromEntries(firesOf(await drain(out))),
        Object.fromEntries(want.fires),
        what,
      );
      assert.deepEqual((await drain(late)).map((t) => t.id).sort(), want.late.sort(), what);
    }
  }
});

// ---------------------------------------------------------------------------------------------
// A restarted window stage forgets its watermark. One source instance: 200 records (ts 0..199),
// a 400 ms pause (a checkpoint is stored meanwhile: window [0, 100) has fired), then a record at
// ts 50 — late — and 100 more. The hop above the window fails once on the late record, before
// passing it on: the window stage restarts from that checkpoint and the batch is replayed.

async function lateAcrossRestart(mode: Mode, lateness: number, crash: boolean) {
  const dir = await Deno.makeTempDir({ prefix: "sluice-r7-" });
  const cfg: InstanceScript = {
    count: 300,
    late: [{ after: 199, ts: 50 }],
    stall: { at: 200, ms: 400 },
  };
  const out = collect<Win>();
  const late = collect<Tick>();
  const dead = memoryDeadLetters();
  const p = pipeline({ mode, signals: false, checkpointMs: 50, deadLetter: dead });
  const w = p.from(scripted([cfg]), { fuse: false })
    .via(hop(crash ? { equals: 900_000, marker: `${dir}/m` } : {}), {
      name: "hop",
      fuse: false,
      ...rw(dir),
    })
    .keyBy()
    .via(tumbling(lateness), { name: "win" });
  w.to(out.sink);
  w.sideOutput<Tick>("late").to(late.sink);
  const summary = await finish(p, mode);
  assert.equal(summary.stages.hop?.restarts, crash ? 1 : 0, "the hop failed as planned");
  return {
    fires: firesOf(await drain(out)),
    late: (await drain(late)).map((t) => t.id),
    dead: dead.entries.length,
    want: simulate(cfg, { lateness, ooo: 0 }),
  };
}

Deno.test("A window below a hop that fails on a late record, without the failure: the record is late (control)", async () => {
  for (const mode of MODES) {
    for (const lateness of [0, 1000]) {
      const got = await lateAcrossRestart(mode, lateness, false);
      assert.deepEqual(Object.fromEntries(got.fires), Object.fromEntries(got.want.fires), mode);
      assert.deepEqual(got.late, got.want.late, mode);
    }
  }
});

for (const mode of MODES) {
  Deno.test(`[${mode}] a window stage restarted from its checkpoint resumes at its watermark: a record that was late stays late, its window fires once (was a bug)`, async () => {
    // Expected (as without the failure, see the control): window k0@0 fires once, 25/75, and the
    // record at ts 50 goes to the late output. What happened: the restored stage started with
    // watermark -Infinity (the checkpoint did not hold it, nor does the replay give it before
    // the batch), so the replayed late record opened window k0@0 again, which fired a second time
    // with that record alone (1/1), and the late output stayed empty. This is not the documented
    // at-least-once window (no stateless instance died after a checkpoint it had not heard of):
    // any restart of the window's region between a late record and the next checkpoint did it.
    // Checkpoints now hold each stage's watermark, and its restored task resumes at it.
    const got = await lateAcrossRestart(mode, 0, true);
    assert.deepEqual(got.fires.get("k0@0"), got.want.fires.get("k0@0"), "window k0@0");
    assert.deepEqual(got.late, got.want.late, "the late output");
  });

  Deno.test(`[${mode}] a window stage restarted from its checkpoint re-fires a late update within allowedLatenessMs (was a bug)`, async () => {
    // allowedLatenessMs 1000: window k0@0 fired (25/75) before the checkpoint and is kept, marked
    // fired. Expected (as without the failure): the late record updates it and it fires again at
    // once, 26/76. What happened: replayed into the restored stage (watermark -Infinity), the
    // record updated the window, but `refire` (processors/window.ts) returned as `w.e > wm`
    // without clearing `w.f`; later watermarks and the final flush skipped a window marked fired.
    // The update was never emitted: k0@0 was only ever 25/75.
    const got = await lateAcrossRestart(mode, 1000, true);
    assert.deepEqual(got.fires.get("k0@0"), got.want.fires.get("k0@0"), "window k0@0");
  });
}

// ---------------------------------------------------------------------------------------------
// A restarted stage above a window, with parallel inputs: windows fire complete; the watermark a
// stage below sees never goes back. The hop is a task of its own: fused with the source, its
// failure would restart the source instance, which (no committed position) would read everything
// again.

for (const mode of MODES) {
  Deno.test(`[${mode}] a parallel hop above a keyed window fails once: windows complete, nothing late, the watermark below never goes back`, async () => {
    const dir = await Deno.makeTempDir({ prefix: "sluice-r7-" });
    const instances: InstanceScript[] = [
      { count: 3000, delayMs: 5 },
      { count: 3000, delayMs: 0 },
    ];
    const out = collect<Win>();
    const probe = collect<WmReport>();
    const dead = memoryDeadLetters();
    const p = pipeline({ mode, signals: false, checkpointMs: 50, deadLetter: dead });
    const w = p.from(scripted(instances), { parallelism: 2, ...PULLS })
      .via(hop({ equals: 1_001_500, marker: `${dir}/m` }), {
        name: "hop",
        parallelism: 2,
        fuse: false,
        ...PULLS,
        ...rw(dir),
      })
      .keyBy()
      .via(tumbling(), { name: "win" });
    w.to(out.sink);
    w.via(stage<Win, WmReport>(fixtures, {}, { export: "wmProbe" }), { name: "probe", fuse: false })
      .to(probe.sink);
    const summary = await finish(p, mode);
    assert.equal(summary.stages.hop?.restarts, 1, "the hop failed once");
    // Windows fired after the last checkpoint fire again when the window stage is restored
    // (at-least-once output): identical duplicates are allowed; every window fires complete, never
    // over (CI once saw every window at 1.5 ×: the hop died while a checkpoint was stored, and its
    // source replayed what that checkpoint held; now each stored checkpoint is told to every task).
    assertComplete(firesOf(await drain(out)), complete(instances), mode, { duplicates: true });
    assert.equal(dead.entries.length, 0, "nothing was late");
    const [report] = await drain(probe);
    assert.equal(report?.regressions, 0, `watermarks below: ${report?.watermarks.join(",")}`);
  });
}

Deno.test("Sender.reconnect() to a killed receiver's replacement waits for its goodbye: what it acked last is not sent again (was a bug)", async () => {
  // The test above over-counted now and then: about 1 run in 50 under load, and more often with
  // the hop fused with its source (which has no committed position: restarted, it reads
  // everything again). A checkpoint below was stored and the hop's failing instance passed its
  // acks on to the source as it was killed, but the source read the new port's `connectOut`
  // first and closed the old port with those acks unread (inline, the kill even overtook the acks
  // still queued for the task): what the restored window held already was replayed.
  const { port1, port2 } = new MessageChannel();
  port2.onmessage = () => {};
  const sender = new Sender(port1, 8, 1, 1000);
  const token = new Token(() => {});
  for (let i = 0; i < 4; i++) sender.push({ value: i, ts: i }, token);
  await sleep(10);
  // The receiver acks batches 1 and 2 and says goodbye; its replacement connects before the
  // sender has read any of that.
  port2.postMessage({ t: "a", seq: 1 });
  port2.postMessage({ t: "a", seq: 2 });
  port2.postMessage({ t: "e" });
  port2.close();
  const fresh = new MessageChannel();
  const replayed: number[] = [];
  fresh.port2.onmessage = (e: MessageEvent<ToReceiver>) => {
    if (e.data.t === "b") replayed.push(e.data.seq);
  };
  sender.reconnect(fresh.port1, true);
  // Waited for, not slept on: a loaded host delivers the goodbye late (CI once saw nothing
  // replayed 10 ms after the reconnect); a little longer shows that nothing more comes.
  await until(() => replayed.length >= 2, 5000, "the replay to the replacement");
  await sleep(20);
  assert.deepEqual(replayed, [3, 4]);
  sender.close();
  fresh.port2.close();
});

// ---------------------------------------------------------------------------------------------
// Two parallel source instances fail close together; the second one's old incarnation takes its
// full second to close. The window stage (restarted for the first failure) comes back while the
// second instance is still down: its channel is pending.

for (const mode of MODES) {
  Deno.test(`[${mode}] a window restarted while one of its parallel inputs is still restarting is held by that input: windows complete, nothing late (was a bug)`, async () => {
    // Expected: the restarted window's watermark is held by the input still to connect (it is
    // not idle: idleTimeoutMs is the default 10 s), so every window fires complete and nothing
    // is late. What happened: Task#advance took the minimum over the inputs it had; a channel
    // still pending (Task's #pendingIn, from `pending` in Runtime#spawn) was in none, so for the
    // second or so until instance 1 reconnected the watermark followed instance 0 alone, windows
    // fired without instance 1's records, and those records (from its committed position on)
    // arrived late: ~2000 were dead-lettered and ~80 windows fired partial. An input still to
    // connect now holds the watermark back as a silent one does.
    const dir = await Deno.makeTempDir({ prefix: "sluice-r7-" });
    const instances: InstanceScript[] = [
      { count: 3000, delayMs: 10, crash: { at: 1000, marker: `${dir}/m0` }, commit: `${dir}/c0` },
      {
        count: 3000,
        delayMs: 10,
        // Fails at its first pull after instance 0 failed.
        crash: { at: 0, marker: `${dir}/m1`, when: `${dir}/m0` },
        closeMs: 1500,
        commit: `${dir}/c1`,
      },
    ];
    const out = collect<Win>();
    const dead = memoryDeadLetters();
    const p = pipeline({ mode, signals: false, checkpointMs: 50, deadLetter: dead });
    p.from(scripted(instances), { parallelism: 2, ...PULLS, ...rw(dir) })
      .keyBy()
      .via(tumbling(), { name: "win" })
      // Fused with the window: its old incarnation takes 500 ms to close, so the window's
      // replacement starts after instance 1 failed, and before instance 1's replacement.
      .via(hop({ closeMs: 500 }), { name: "slowClose" })
      .to(out.sink);
    const summary = await finish(p, mode);
    const failed = summary.failures.filter((f) => f.code === "Error").map((f) => f.instance);
    assert.deepEqual(failed.sort(), [0, 1], "both source instances failed once");
    const late = dead.entries.length;
    assertComplete(firesOf(await drain(out)), complete(instances), `${late} records late`, {
      duplicates: true,
    });
    assert.equal(late, 0, "records dead-lettered as late");
  });
}

// ---------------------------------------------------------------------------------------------
// `align: { maxDriftMs }` across restarts and a rescale.

const SKEWED: InstanceScript[] = [
  { count: 3000, delayMs: 10 },
  { count: 3000, delayMs: 0 },
];

for (const mode of MODES) {
  Deno.test(`[${mode}] an aligned window stage that fails once finishes, windows complete, nothing late`, async () => {
    const dir = await Deno.makeTempDir({ prefix: "sluice-r7-" });
    const out = collect<Win>();
    const dead = memoryDeadLetters();
    const p = pipeline({ mode, signals: false, checkpointMs: 50, deadLetter: dead });
    p.from(scripted(SKEWED), { parallelism: 2 })
      .keyBy()
      .via(tumbling(), { name: "win", align: { maxDriftMs: 100 } })
      // Fused with the window: fails the task once, on the windows of [1000, 1100).
      .via(hop({ field: "windowStart", equals: 1000, marker: `${dir}/m` }), {
        name: "crash",
        ...rw(dir),
      })
      .to(out.sink);
    const summary = await finish(p, mode);
    assert.equal(summary.stages.crash?.restarts, 1, "the window's task failed once");
    assertComplete(firesOf(await drain(out)), complete(SKEWED), mode, { duplicates: true });
    assert.equal(dead.entries.length, 0, "nothing was late");
  });

  Deno.test(`[${mode}] an aligned window whose fast source instance fails and resumes from its place in the checkpoint: windows exact, nothing late`, async () => {
    const dir = await Deno.makeTempDir({ prefix: "sluice-r7-" });
    const instances: InstanceScript[] = [
      { ...SKEWED[0]!, commit: `${dir}/c0` },
      { ...SKEWED[1]!, commit: `${dir}/c1`, crash: { at: 1500, marker: `${dir}/m` } },
    ];
    const out = collect<Win>();
    const dead = memoryDeadLetters();
    const p = pipeline({ mode, signals: false, checkpointMs: 50, deadLetter: dead });
    p.from(scripted(instances), { parallelism: 2, ...PULLS, ...rw(dir) })
      .keyBy()
      .via(tumbling(), { name: "win", align: { maxDriftMs: 100 } })
      .to(out.sink);
    const summary = await finish(p, mode);
    assert.equal(summary.stages.scripted?.restarts, 1, "the source instance failed once");
    // The restarted source resumes from its place in the checkpoint the window is restored to,
    // not from its commits (behind if it died just after a checkpoint was stored): every window
    // holds exactly its records; one that fired after that checkpoint fires again, the same.
    assertComplete(firesOf(await drain(out)), complete(instances), mode, { duplicates: true });
    assert.equal(dead.entries.length, 0, "nothing was late");
  });

  Deno.test(`[${mode}] a parallel source instance fails long after the other one ended: the restored window is not held, windows complete`, async () => {
    const dir = await Deno.makeTempDir({ prefix: "sluice-r7-" });
    const instances: InstanceScript[] = [
      { count: 200, commit: `${dir}/c0` },
      { count: 3000, delayMs: 5, commit: `${dir}/c1`, crash: { at: 2000, marker: `${dir}/m` } },
    ];
    const out = collect<Win>();
    const dead = memoryDeadLetters();
    // An idle input would be let go after a minute only: the ended one must not count at all.
    const p = pipeline({ mode, signals: false, checkpointMs: 50, deadLetter: dead });
    p.from(scripted(instances), { parallelism: 2, ...PULLS, ...rw(dir) })
      .keyBy()
      .via(tumbling(), { name: "win", idleTimeoutMs: 60_000 })
      .to(out.sink);
    const summary = await finish(p, mode, 10_000);
    assert.equal(summary.stages.scripted?.restarts, 1, "the source instance failed once");
    assertComplete(firesOf(await drain(out)), complete(instances), mode, { duplicates: true });
    assert.equal(dead.entries.length, 0, "nothing was late");
  });

  Deno.test(`[${mode}] scale() of a keyed window mid-stream (no align) settles at once: windows complete, nothing late`, async () => {
    const got = await scaleMidStream(mode, false);
    assertComplete(got.fires, got.expected, got.what);
    assert.equal(got.late, 0, got.what);
    assert.ok(got.scaledIn >= 0 && got.scaledIn < 2500, got.what);
  });

  Deno.test(`[${mode}] scale() of an aligned window settles at once: windows complete, nothing late (was a bug)`, async () => {
    // Expected: scale() settles as without align (the test above) and the windows stay complete.
    // What happened: the rescale paused routing on every input of the stage and waited until what
    // was sent was acked; but the fast input's batches were parked by alignment (unacked) until
    // the slow input caught up, and the slow input's records were held by that very pause.
    // Nothing moved until an input counted as idle (idleTimeoutMs, 4 s here; with the default
    // 10 s scale() took 10 s). Then the fast input was let go; in workers mode the watermark then
    // followed it alone, windows fired without the slow input's records, and when routing resumed
    // those arrived late (~2000 dead-lettered, ~90 windows partial). Inline, the scale() took the
    // idle timeout too. Alignment is now off while a rescale's pause drains the stage's input.
    const got = await scaleMidStream(mode, true);
    assertComplete(got.fires, got.expected, got.what);
    assert.equal(got.late, 0, got.what);
    assert.ok(got.scaledIn >= 0 && got.scaledIn < 2500, got.what);
  });
}

/** Scales the window (one instance, aligned or not) to two once it has 500 records. */
async function scaleMidStream(mode: Mode, aligned: boolean) {
  const out = collect<Win>();
  const dead = memoryDeadLetters();
  const instances: InstanceScript[] = [
    { count: 3000, delayMs: 20 },
    { count: 3000, delayMs: 0 },
  ];
  const p = pipeline({ mode, signals: false, checkpointMs: 50, deadLetter: dead });
  p.from(scripted(instances), { parallelism: 2 })
    .keyBy()
    .via(tumbling(), {
      name: "win",
      fuse: false,
      ...(aligned && { align: { maxDriftMs: 100 } }),
      idleTimeoutMs: 4000,
    })
    .to(out.sink);
  const running = p.run();
  let scaledIn = -1;
  try {
    await until(() => (p.counters().win?.instances[0]?.in ?? 0) >= 500, 10_000, "records");
    const started = Date.now();
    const scaled = await within(p.scale("win", 2), 10_000);
    if (scaled !== "timed out") scaledIn = Date.now() - started;
    const summary = await within(running, RUN_MS);
    assert.notEqual(summary, "timed out", "the run ended");
  } finally {
    await p.stop().catch(() => {});
    await running.catch(() => {});
  }
  const late = dead.entries.length;
  return {
    fires: firesOf(await drain(out)),
    expected: complete(instances),
    late,
    scaledIn,
    what: `${mode}: scale() took ${scaledIn} ms, ${late} records late`,
  };
}

// ---------------------------------------------------------------------------------------------
// An idle input: holds time back until idleTimeoutMs, then not; holds it again once it speaks.

for (const mode of MODES) {
  Deno.test(`[${mode}] an input silent for idleTimeoutMs stops holding windows back, not before, and holds them again when it resumes: nothing late`, async () => {
    const dir = await Deno.makeTempDir({ prefix: "sluice-r7-" });
    const f = (name: string) => `${dir}/${name}`;
    const instances: InstanceScript[] = [
      // ts 0..49, silent 2 s, then ts 1050..2049 at 50 records per 20 ms.
      {
        count: 1050,
        jumps: [{ from: 50, add: 1000 }],
        delayMs: 20,
        stall: { at: 50, ms: 2000, started: f("started"), resumed: f("resumed") },
        marks: [{ at: 300, file: f("s0at300") }],
      },
      // ts 0..999 over ~1.6 s; then, once instance 0 is well under way again, ts 1000..2998 at
      // once (far ahead of it), and silent 1 s before its last record.
      {
        count: 3000,
        perPull: 50,
        delayMs: 80,
        gates: [{ at: 1000, file: f("s0at300") }],
        paces: [{ at: 1000, delayMs: 0 }],
        stall: { at: 2999, ms: 1000 },
      },
    ];
    const out = collect<Win>();
    const dead = memoryDeadLetters();
    const p = pipeline({ mode, signals: false, deadLetter: dead, stopTimeoutMs: 3000 });
    p.from(scripted(instances), { parallelism: 2, ...rw(dir) })
      .keyBy()
      .via(tumbling(), { name: "win", idleTimeoutMs: 800 })
      .to(out.sink);
    const running = p.run();
    try {
      await until(() => exists(f("started")), 10_000, "instance 0's stall");
      const started = Number(await Deno.readTextFile(f("started")));
      await sleep(Math.max(0, started + 300 - Date.now()));
      // 300 ms into the stall (idle after 800): instance 0 (at ts 49) still holds every window.
      const early = (await out.values()).length;
      assert.equal(early, 0, "no window fired before instance 0 was idle");
      // Idle, it holds nothing back: windows fire on instance 1's watermark during the stall.
      const deadline = Date.now() + 5000;
      while (!(await out.values()).some((v) => v.windowStart >= 500)) {
        assert.ok(Date.now() < deadline, "a window past 500 ms fired within 5 s");
        await sleep(10);
      }
      assert.ok(!exists(f("resumed")), "windows fired while instance 0 was silent");
      const summary = await within(running, RUN_MS);
      assert.notEqual(summary, "timed out", "the run ended");
    } finally {
      await p.stop().catch(() => {});
      await running.catch(() => {});
    }
    // Back, instance 0 holds time again: instance 1 ran ~1000 ms ahead of it, yet none of its
    // records were late.
    assertComplete(firesOf(await drain(out)), complete(instances), mode);
    assert.deepEqual(dead.entries.map((e) => (e.record as StreamRecord<Tick>).value.id), []);
  });
}
