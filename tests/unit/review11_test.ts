// Eleventh review, by tests: commit 0e6329a (a stored aligned checkpoint is told to every task,
// whose senders then ack every batch they sent ahead of its barrier on the edges of `#cut`). What
// the change must keep: nothing is acked by a commit that the state or a sink below (or the dead
// letters) did not get, and a stateless instance that dies around a stored checkpoint is not sent
// again what the restored state already holds (exact sums, README "Supervision").
//
// Shapes: a hop with a side output; a parallel hop above a parallel sum (one_for_one and
// one_for_all); two hops in a row (the upper, the lower or both fail); a hop above a sink only (no
// checkpoints); a hop that dead-letters poison records while it dies; a rescale of the sum, then a
// hop failure while a checkpoint is stored; and dead letters whose write fails while a checkpoint
// is stored (the stage that dead-lettered them is restarted so that its input is replayed: the
// commit must not have acked that input). Inline and in workers.
//
// Tests named "… (was a bug)" failed on the code as reviewed (0e6329a); each says what was
// expected, what happened, the cause and the fix.
import assert from "node:assert/strict";
import {
  type DeadLetter,
  type DeadLetterSink,
  memoryDeadLetters,
  memoryStateBackend,
  type PipelineOptions,
  type StateBackend,
} from "../../mod.ts";
import { fixtureRef } from "./_fixture_ref.ts";
import { codeOf, codes, hows, make, outputs, resolves, slowWrite } from "./_runs.ts";
import { faultFiles } from "./_paced.ts";
import { sleep, until } from "./_wait.ts";
import { exists } from "./fixtures/_once.ts";

const r9 = fixtureRef(new URL("./fixtures/review9_stages.ts", import.meta.url));
const r11 = fixtureRef(new URL("./fixtures/review11_stages.ts", import.meta.url));
const modes = ["inline", "workers"] as const;
type Mode = (typeof modes)[number];
type Files = Awaited<ReturnType<typeof faultFiles>>;
/** Runs that fail or kill workers leave timers and ports behind them. */
const loose = { sanitizeOps: false, sanitizeResources: false };
const KEYS = 20;

async function withFiles(fn: (f: Files) => Promise<void>): Promise<void> {
  const f = await faultFiles("sluice-r11-");
  try {
    await fn(f);
  } finally {
    await Deno.remove(f.dir, { recursive: true }).catch(() => {});
  }
}

/** Like `slowWrite`, for the first write that begins once `armFile` exists. */
function slowOnceArmed(armFile: string, startedFile: string, delayMs: number): StateBackend {
  const inner = memoryStateBackend();
  let done = false;
  return {
    getMany: (keys) => inner.getMany(keys),
    async setMany(entries) {
      if (!done && exists(armFile)) {
        done = true;
        Deno.writeTextFileSync(startedFile, "x");
        await sleep(delayMs);
      }
      await inner.setMany(entries);
    },
  };
}

/** Dead letters in memory whose first write takes `delayMs` and then rejects. */
function failingFirstWrite(
  delayMs: number,
): DeadLetterSink & { entries: DeadLetter[]; failed: number } {
  const entries: DeadLetter[] = [];
  const sink = {
    entries,
    failed: 0,
    async write(list: DeadLetter[]) {
      if (sink.failed === 0) {
        sink.failed++;
        await sleep(delayMs);
        throw new Error("dead-letter store briefly away");
      }
      entries.push(...list);
    },
  };
  return sink;
}

/** Ids 0..count-1 except those `skip` says. */
function ids(count: number, skip: (id: number) => boolean = () => false): number[] {
  const out: number[] = [];
  for (let i = 0; i < count; i++) if (!skip(i)) out.push(i);
  return out;
}

/** Per-key sums and counts over `list` (the r9 source: key `k<id % 20>`, n = id % 7). */
function expected(list: number[]): Record<string, [number, number]> {
  const out: Record<string, [number, number]> = {};
  for (const i of list) {
    const k = `k${i % KEYS}`;
    const [s, n] = out[k] ?? [0, 0];
    out[k] = [s + i % 7, n + 1];
  }
  return out;
}

/** The finals the sum wrote to `path` match `list` exactly: each key once, its sum and count. */
async function assertExact(path: string, list: number[]): Promise<void> {
  const finals = (await outputs(path)).filter((o) => o.final);
  const got: Record<string, [number, number]> = {};
  for (const o of finals) {
    assert.ok(!(o.key! in got), `key ${o.key} written twice`);
    got[o.key!] = [o.sum!, o.count!];
  }
  const want = expected(list);
  const off = Object.keys({ ...want, ...got }).filter((k) =>
    got[k]?.[0] !== want[k]?.[0] || got[k]?.[1] !== want[k]?.[1]
  ).map((k) => `${k} ${got[k]}/${want[k]}`);
  const total = finals.reduce((n, o) => n + o.count!, 0);
  assert.deepEqual(
    off,
    [],
    `per-key [sum,count] got/expected (counted ${total} of ${list.length})`,
  );
}

/** Every id of `list` is among the records written to `path` (at least once); no other id. */
async function assertAll(path: string, list: number[]): Promise<number> {
  const written = (await outputs(path)).filter((o) => !o.final).map((o) => o.id!);
  const seen = new Set(written);
  const missing = list.filter((i) => !seen.has(i));
  assert.deepEqual(missing.slice(0, 20), [], `ids lost (${missing.length})`);
  const want = new Set(list);
  assert.deepEqual(written.filter((i) => !want.has(i)).slice(0, 20), [], "ids not expected");
  return written.length;
}

const src = (f: Files, count: number, extra: Record<string, unknown> = {}) =>
  [
    r9("src", { count, perPull: 50, delayMs: 8, ...extra }, "source"),
    { name: "src", fuse: false, permissions: f.perms },
  ] as const;

const sumAndSink = (f: Files, out: string, sumOpts: Record<string, unknown> = {}) => ({
  sum: [r9("sum", {}), { name: "sum", fuse: false, ...sumOpts }] as const,
  sink: [r9("sink", { out }, "sink"), { name: "out", fuse: false, permissions: f.perms }] as const,
});

// ---------------------------------------------------------------------------------------------
// 1. A hop with a side output to a sink of its own, above a keyed sum; the hop dies while a
//    checkpoint is stored. The side edge is in the cut (it ends in a sink): its sink must still get
//    every record, the sum exact.

for (const mode of modes) {
  for (const how of hows(mode)) {
    Deno.test({
      name:
        `${mode}: a hop with a side output to a sink dies (${how}) while a checkpoint is stored: exact sums, the side sink has every id`,
      ...loose,
      fn: () =>
        withFiles(async (f) => {
          const COUNT = 3000, out = `${f.dir}/out`, side = `${f.dir}/side`;
          const storing = `${f.dir}/storing`;
          const p = make(mode, { state: slowWrite(storing, 100, 3), checkpointMs: 50 });
          const { sum, sink } = sumAndSink(f, out);
          const h = p.from(...src(f, COUNT)).via(
            r11("hop", { side: true, fault: { how, marker: f.marker, waitFor: storing } }),
            { name: "hop", fuse: false, permissions: f.perms },
          );
          h.keyBy().via(...sum).to(...sink);
          h.sideOutput("side").to(r9("sink", { out: side }, "sink"), {
            name: "sideOut",
            fuse: false,
            permissions: f.perms,
          });
          const s = await resolves(p, 30_000);
          assert.ok(exists(`${f.marker}`), "the hop failed");
          assert.deepEqual(codes(s), [`hop ${codeOf(how)}`]);
          await assertExact(out, ids(COUNT));
          await assertAll(side, ids(COUNT));
        }),
    });
  }
}

// ---------------------------------------------------------------------------------------------
// 2. A hop at parallelism 2 above a keyed sum at parallelism 2: instance 1 of the hop dies while a
//    checkpoint is stored (one_for_one: it alone, and the sum; one_for_all: both hops).

for (const mode of modes) {
  for (const strategy of ["one_for_one", "one_for_all"] as const) {
    const how = mode === "inline" ? "throw" : "timer";
    Deno.test({
      name:
        `${mode}: hop#1 of 2 above a keyed sum of 2 dies (${how}, ${strategy}) while a checkpoint is stored: exact sums`,
      ...loose,
      fn: () =>
        withFiles(async (f) => {
          const COUNT = 4000, out = `${f.dir}/out`, storing = `${f.dir}/storing`;
          const p = make(mode, { state: slowWrite(storing, 120, 3), checkpointMs: 50 });
          const { sum, sink } = sumAndSink(f, out, { parallelism: 2 });
          p.from(...src(f, COUNT)).via(
            r11("hop", { fault: { how, marker: f.marker, waitFor: storing, instance: 1 } }),
            { name: "hop", parallelism: 2, fuse: false, strategy, permissions: f.perms },
          ).keyBy().via(...sum).to(...sink);
          const s = await resolves(p, 30_000);
          assert.ok(exists(f.marker), "hop#1 failed");
          assert.deepEqual(codes(s), [`hop ${codeOf(how)}`]);
          await assertExact(out, ids(COUNT));
        }),
    });
  }
}

// ---------------------------------------------------------------------------------------------
// 3. Two hops in a row (neither fused) above a keyed sum: the upper one, the lower one, or both
//    die while a checkpoint is stored.

for (const mode of modes) {
  for (const which of ["upper", "lower", "both"] as const) {
    const how = mode === "inline" ? "throw" : "timer";
    Deno.test({
      name:
        `${mode}: two hops in a row above a keyed sum, ${which} die(s) (${how}) while a checkpoint is stored: exact sums`,
      ...loose,
      fn: () =>
        withFiles(async (f) => {
          const COUNT = 3000, out = `${f.dir}/out`, storing = `${f.dir}/storing`;
          const p = make(mode, { state: slowWrite(storing, 120, 3), checkpointMs: 50 });
          const { sum, sink } = sumAndSink(f, out);
          const fault = (m: string) => ({ how, marker: m, waitFor: storing });
          p.from(...src(f, COUNT)).via(
            r11("hop", { fault: which !== "lower" ? fault(`${f.marker}.u`) : undefined }),
            { name: "hop1", fuse: false, permissions: f.perms },
          ).via(
            r11("hop", { fault: which !== "upper" ? fault(`${f.marker}.l`) : undefined }),
            { name: "hop2", fuse: false, permissions: f.perms },
          ).keyBy().via(...sum).to(...sink);
          const s = await resolves(p, 30_000);
          const want = [
            ...(which !== "lower" ? [`hop1 ${codeOf(how)}`] : []),
            ...(which !== "upper" ? [`hop2 ${codeOf(how)}`] : []),
          ];
          assert.deepEqual(codes(s), want);
          await assertExact(out, ids(COUNT));
        }),
    });
  }
}

// ---------------------------------------------------------------------------------------------
// 4. No stateful stage: no checkpoint, no commit. A hop above a sink dies mid-stream: every id is
//    written (at least once), none lost.

for (const mode of modes) {
  for (const how of hows(mode)) {
    Deno.test({
      name: `${mode}: a hop above a sink only dies (${how}) mid-stream: every id written`,
      ...loose,
      fn: () =>
        withFiles(async (f) => {
          const COUNT = 2000, out = `${f.dir}/out`;
          const p = make(mode, { checkpointMs: 50 });
          p.from(...src(f, COUNT, { delayMs: 3 })).via(
            r11("hop", { fault: { how, marker: f.marker, id: 1000 } }),
            { name: "hop", fuse: false, permissions: f.perms },
          ).to(r9("sink", { out }, "sink"), { name: "out", fuse: false, permissions: f.perms });
          const s = await resolves(p, 30_000);
          assert.deepEqual(codes(s), [`hop ${codeOf(how)}`]);
          const n = await assertAll(out, ids(COUNT));
          assert.ok(n >= COUNT);
        }),
    });
  }
}

// ---------------------------------------------------------------------------------------------
// 5. A hop that dead-letters poison records (ctx.deadLetter, or process() throwing: retried, then
//    dead-lettered) dies while a checkpoint is stored: every id is in the sum or in the dead
//    letters, the sum exact over the others.

for (const mode of modes) {
  for (const kind of ["dead", "throws"] as const) {
    const how = mode === "inline" ? "throw" : "timer";
    Deno.test({
      name:
        `${mode}: a hop dead-letters poison ids (${kind}) and dies (${how}) while a checkpoint is stored: exact sums, every poison id dead-lettered`,
      ...loose,
      fn: () =>
        withFiles(async (f) => {
          const COUNT = 3000, out = `${f.dir}/out`, storing = `${f.dir}/storing`;
          const poison = { every: 97, rem: 13 };
          const isPoison = (i: number) => i % poison.every === poison.rem;
          const dl = memoryDeadLetters();
          const p = make(mode, {
            state: slowWrite(storing, 120, 3),
            checkpointMs: 50,
            deadLetter: dl,
          });
          const { sum, sink } = sumAndSink(f, out);
          p.from(...src(f, COUNT)).via(
            r11("hop", { [kind]: poison, fault: { how, marker: f.marker, waitFor: storing } }),
            { name: "hop", fuse: false, permissions: f.perms },
          ).keyBy().via(...sum).to(...sink);
          const s = await resolves(p, 30_000);
          assert.deepEqual(codes(s), [`hop ${codeOf(how)}`]);
          await assertExact(out, ids(COUNT, isPoison));
          const dead = new Set(dl.entries.map((e) => (e.record.value as { id: number }).id));
          const lost = ids(COUNT).filter((i) => isPoison(i) && !dead.has(i));
          assert.deepEqual(lost, [], "poison ids not dead-lettered");
          assert.deepEqual([...dead].filter((i) => !isPoison(i)), [], "others dead-lettered");
        }),
    });
  }
}

// ---------------------------------------------------------------------------------------------
// 6. The sum is rescaled to 3 while records flow; once that is done, the hop above it dies while
//    the next checkpoint is stored: exact sums (the failure is not during the scale).

for (const mode of modes) {
  const how = mode === "inline" ? "throw" : "timer";
  Deno.test({
    name:
      `${mode}: scale("sum", 3), then the hop dies (${how}) while a checkpoint is stored: exact sums`,
    ...loose,
    fn: () =>
      withFiles(async (f) => {
        const COUNT = 4000, out = `${f.dir}/out`, storing = `${f.dir}/storing`;
        const near = `${f.dir}/near`, arm = `${f.dir}/arm`;
        const p = make(mode, { state: slowOnceArmed(arm, storing, 120), checkpointMs: 50 });
        const { sum, sink } = sumAndSink(f, out);
        p.from(...src(f, COUNT, { nearAt: 800, nearFile: near })).via(
          r11("hop", { fault: { how, marker: f.marker, waitFor: storing } }),
          { name: "hop", fuse: false, permissions: f.perms },
        ).keyBy().via(...sum).to(...sink);
        const running = resolves(p, 30_000);
        await until(() => exists(near), 10_000, "the source to get to id 800");
        await p.scale("sum", 3);
        Deno.writeTextFileSync(arm, "x");
        const s = await running;
        assert.ok(exists(f.marker), "the hop failed");
        assert.deepEqual(codes(s), [`hop ${codeOf(how)}`]);
        await assertExact(out, ids(COUNT));
      }),
  });
}

// ---------------------------------------------------------------------------------------------
// 6b. A diamond: the source feeds two stateless arms (even ids, odd ids), both into one keyed sum
//     (a second input added with `_edge`, as review10 does); one arm dies while a checkpoint is
//     stored.

for (const mode of modes) {
  for (const arm of ["even", "odd"] as const) {
    const how = mode === "inline" ? "throw" : "timer";
    Deno.test({
      name:
        `${mode}: a diamond into a keyed sum, the ${arm} arm dies (${how}) while a checkpoint is stored: exact sums`,
      ...loose,
      fn: () =>
        withFiles(async (f) => {
          const COUNT = 3000, out = `${f.dir}/out`, storing = `${f.dir}/storing`;
          const p = make(mode, { state: slowWrite(storing, 120, 3), checkpointMs: 50 });
          const { sum, sink } = sumAndSink(f, out, { parallelism: 2 });
          const s0 = p.from(...src(f, COUNT));
          const fault = { how, marker: f.marker, waitFor: storing };
          const even = s0.via(
            r11("hop", { only: { every: 2, rem: 0 }, fault: arm === "even" ? fault : undefined }),
            { name: "even", fuse: false, permissions: f.perms },
          );
          s0.via(
            r11("hop", { only: { every: 2, rem: 1 }, fault: arm === "odd" ? fault : undefined }),
            { name: "odd", fuse: false, permissions: f.perms },
          );
          even.keyBy().via(...sum).to(...sink);
          const names = p.stages;
          p._edge({ from: names.indexOf("odd"), to: names.indexOf("sum"), keyed: true, side: "" });
          const s = await resolves(p, 30_000);
          assert.deepEqual(codes(s), [`${arm} ${codeOf(how)}`]);
          await assertExact(out, ids(COUNT));
        }),
    });
  }
}

// ---------------------------------------------------------------------------------------------
// 6c. A stateful pass-through above the hop, a keyed sum below it: the hop dies while a
//     checkpoint is stored. The stateful stage above is not restarted; what it kept for the hop
//     after the barrier is replayed, what it sent before is in the sum's checkpoint.

for (const mode of modes) {
  const how = mode === "inline" ? "throw" : "timer";
  Deno.test({
    name:
      `${mode}: stateful pass-through → hop → keyed sum, the hop dies (${how}) while a checkpoint is stored: exact sums`,
    ...loose,
    fn: () =>
      withFiles(async (f) => {
        const COUNT = 3000, out = `${f.dir}/out`, storing = `${f.dir}/storing`;
        const p = make(mode, { state: slowWrite(storing, 120, 3), checkpointMs: 50 });
        const { sum, sink } = sumAndSink(f, out);
        p.from(...src(f, COUNT)).keyBy().via(r9("sum", { pass: true, finals: false }), {
          name: "pass",
          fuse: false,
        }).via(
          r11("hop", { fault: { how, marker: f.marker, waitFor: storing } }),
          { name: "hop", fuse: false, permissions: f.perms },
        ).keyBy().via(...sum).to(...sink);
        const s = await resolves(p, 30_000);
        assert.deepEqual(codes(s), [`hop ${codeOf(how)}`]);
        await assertExact(out, ids(COUNT));
      }),
  });
}

// ---------------------------------------------------------------------------------------------
// 7. Dead letters whose write fails while checkpoints are stored. The task that dead-lettered
//    them fails ("its restart replays them", actors/_task.ts `dlqAck`): its input must still be
//    unacked then. A commit that acks that input anyway loses the poison record (neither in the
//    sum nor in the dead letters).

function dlqRun(
  mode: Mode,
  f: Files,
  o: { count: number; dl: DeadLetterSink; at: "hop" | "sink" },
) {
  const out = `${f.dir}/out`;
  const poison = { every: 100, rem: 37 };
  const p = make(mode, { checkpointMs: 50, deadLetter: o.dl } as PipelineOptions);
  const h = p.from(...src(f, o.count, { delayMs: 5 })).via(
    r11("hop", o.at === "hop" ? { dead: poison } : {}),
    { name: "hop", fuse: false, permissions: f.perms },
  );
  if (o.at === "hop") {
    const { sum, sink } = sumAndSink(f, out);
    h.keyBy().via(...sum).to(...sink);
  } else {
    // A sum beside it keeps checkpoints going.
    h.to(r11("sink", { out, throws: poison }, "sink"), {
      name: "out",
      fuse: false,
      permissions: f.perms,
    });
    h.keyBy().via(r9("sum", { finals: false }), { name: "sum", fuse: false }).to(
      r9("sink", { out: `${f.dir}/sums` }, "sink"),
      { name: "sums", fuse: false, permissions: f.perms },
    );
  }
  return { p, out, isPoison: (i: number) => i % poison.every === poison.rem };
}

for (const mode of modes) {
  Deno.test({
    name:
      `${mode}: a hop's dead-letter write fails after checkpoints were stored: the poison record is dead-lettered on the replay, sums exact (was a bug)`,
    // Expected: the failed dead-letter write fails the hop, whose restart replays its unacked
    // input, so id 37 is dead-lettered on the second try; every other id is summed exactly.
    // Happened (0e6329a): id 37 is in neither (the dead letters hold the other poison ids; sums exact over
    // the rest); once 137 and 237 were lost too. With this test and the sink's below, 43 of 44
    // runs failed (11 runs of the 4, inline and workers); on 817d284 (before the change) all 4
    // pass (4 of 4 runs). Cause: the commit of a checkpoint
    // stored while the write was pending acks the source's batch holding id 37 (actors/_sender.ts
    // `commit`, called from actors/_task.ts case "committed"): the hop held that batch's token only
    // for the dead letter (actors/_task.ts `dlqWaiting`, released at `dlqAck`), which `#cut`
    // (actors/_runtime.ts) does not count as an end of the records; the replay that `dlqAck`'s
    // failure relies on then no longer holds it. Fix: a task takes a checkpoint (passes its
    // barrier on, or reports it) only once every dead letter it sent is written
    // (`Task.#deadLettersWritten`); a failed write fails it, and the checkpoint with it.
    ...loose,
    fn: () =>
      withFiles(async (f) => {
        const COUNT = 2000;
        const dl = failingFirstWrite(400);
        const { p, out, isPoison } = dlqRun(mode, f, { count: COUNT, dl, at: "hop" });
        const s = await resolves(p, 30_000);
        assert.equal(dl.failed, 1, "the first dead-letter write failed");
        assert.ok(codes(s).every((c) => c.startsWith("hop ")), codes(s).join());
        assert.ok(s.failures.length >= 1, "the hop failed");
        await assertExact(out, ids(COUNT, isPoison));
        const dead = new Set(dl.entries.map((e) => (e.record.value as { id: number }).id));
        const lost = ids(COUNT).filter((i) => isPoison(i) && !dead.has(i));
        assert.deepEqual(lost, [], "poison ids in neither the sums nor the dead letters");
      }),
  });

  Deno.test({
    name:
      `${mode}: a sink's dead-letter write fails after checkpoints were stored: the poison record is dead-lettered on the replay, every other id written (was a bug)`,
    // Expected: the sink's write of the batch holding id 37 fails every try, so the record is
    // dead-lettered; that write fails, which fails the sink (actors/_task.ts `dlqAck`), and its
    // replacement is sent its unacked input again: id 37 dead-lettered on the second try.
    // Happened (0e6329a): id 37 is neither written nor dead-lettered (every other id written), inline and
    // in workers (see the hop's test above for the counts; passes on 817d284). Cause: the same:
    // the commit acks the hop → sink batch (and src → hop) sent ahead of a stored barrier
    // although the sink's token for it waits on the dead-letter write (actors/_sender.ts
    // `commit`; `#cut` in actors/_runtime.ts counts a sink's input as ended in it once drained).
    // Fix: a sink reports the checkpoint only once the dead letters of its drain are written.
    ...loose,
    fn: () =>
      withFiles(async (f) => {
        const COUNT = 2000;
        const dl = failingFirstWrite(400);
        const { p, out, isPoison } = dlqRun(mode, f, { count: COUNT, dl, at: "sink" });
        const s = await resolves(p, 30_000);
        assert.equal(dl.failed, 1, "the first dead-letter write failed");
        assert.ok(s.failures.length >= 1, "the sink failed");
        await assertAll(out, ids(COUNT, isPoison));
        const dead = new Set(dl.entries.map((e) => (e.record.value as { id: number }).id));
        const lost = ids(COUNT).filter((i) => isPoison(i) && !dead.has(i));
        assert.deepEqual(lost, [], "poison ids neither written nor dead-lettered");
      }),
  });
}

// Control for 7: the same run whose dead-letter store never fails loses nothing.
for (const mode of modes) {
  Deno.test({
    name:
      `${mode}: a hop dead-letters poison ids, the store never fails: every one dead-lettered, sums exact`,
    ...loose,
    fn: () =>
      withFiles(async (f) => {
        const COUNT = 2000;
        const dl = memoryDeadLetters();
        const { p, out, isPoison } = dlqRun(mode, f, { count: COUNT, dl, at: "hop" });
        const s = await resolves(p, 30_000);
        assert.deepEqual(codes(s), []);
        await assertExact(out, ids(COUNT, isPoison));
        const dead = dl.entries.map((e) => (e.record.value as { id: number }).id).sort((a, b) =>
          a - b
        );
        assert.deepEqual(dead, ids(COUNT).filter(isPoison));
      }),
  });
}
