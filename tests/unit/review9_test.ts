// Ninth review, by tests: failures that coincide near the end of the stream and during restarts,
// rescales and stop(). An instance below fails while it finishes (flush(), the end of its input,
// its final checkpoint, close(), its worker dying) after the instance above was retired as done
// or spent; two failures at once; the same instance failing again during its own replay; a
// failure during scale() as the source ends; a failure while stop() drains; escalation while
// other instances finish. Inline and in workers, stateless and stateful (keyed, checkpointed),
// fused and `fuse: false`. Faults are injected once per marker file (fixtures/review9_stages.ts),
// so that a replacement does not fail again, and ordered by files the stages create.
//
// Expected everywhere: no record lost (each id reaches the sink at least once; keyed sums exact,
// per key, the README's at-least-once windows aside), no hang (every wait is bounded), failures
// named correctly, counters consistent. Tests named "(was a bug)" failed on the code as reviewed
// (ca30976); each says what was expected, what happened and the cause. Both were one defect: a
// restart took the stateful instances below back to their latest checkpoints, taken by each
// instance on its own, which could hold what the replay from above sends again. Checkpoints are
// aligned now (barriers from the sources, as Flink's), and every stored one is one cut through the
// pipeline. The other tests passed as reviewed and stay as regression tests.
import assert from "node:assert/strict";
import { fixtureRef } from "./_fixture_ref.ts";
import { codeOf, codes, ends, hows, lines, make, outputs, resolves } from "./_runs.ts";
import { expectedSums, faultFiles } from "./_paced.ts";
import { settles, until } from "./_wait.ts";
import { exists } from "./fixtures/_once.ts";

const ref = fixtureRef(new URL("./fixtures/review9_stages.ts", import.meta.url));
const modes = ["inline", "workers"] as const;
type Mode = (typeof modes)[number];
/** Runs that fail, hang or kill workers leave timers and ports behind them. */
const loose = { sanitizeOps: false, sanitizeResources: false };
const COUNT = 2000;
const KEYS = 20;

/** Ids 0..count-1 each written at least once (`once`: exactly once). */
async function assertIds(path: string, count: number, once: boolean): Promise<void> {
  const ids = (await outputs(path)).filter((o) => !o.final).map((o) => o.id!);
  const seen = new Set(ids);
  const missing = Array.from({ length: count }, (_, i) => i).filter((i) => !seen.has(i));
  assert.deepEqual(missing.slice(0, 10), [], `${missing.length} of ${count} ids never written`);
  assert.equal(seen.size, count, "ids beyond the input written");
  if (once) assert.equal(ids.length, count, `${ids.length - count} ids written twice`);
}

/**
 * The per-key sums and counts written match ids 0..count-1 exactly. `once`: each key written
 * once; else a key may be written again (at-least-once), with the same values. Returns how many
 * lines were repeats.
 */
async function assertSums(path: string, count: number, once: boolean): Promise<number> {
  const finals = (await outputs(path)).filter((o) => o.final);
  const want = expectedSums(count, KEYS);
  const got: Record<string, number> = {};
  const counts: Record<string, number> = {};
  let repeats = 0;
  for (const f of finals) {
    const key = f.key!;
    if (key in got) {
      repeats++;
      assert.ok(!once, `key ${key} written twice (${got[key]} and ${f.sum})`);
      assert.equal(f.sum, got[key], `key ${key} written again with another sum`);
      continue;
    }
    got[key] = f.sum!;
    counts[key] = f.count!;
  }
  assert.deepEqual(got, want, "per-key sums");
  const total = Object.values(counts).reduce((a, b) => a + b, 0);
  assert.equal(total, count, "records counted into the sums");
  return repeats;
}

/**
 * The per-key sums written: none short of ids 0..count-1, none more than `slack` over (the
 * README's at-least-once window: a checkpoint stored just before a stateless instance above died,
 * one batch or two counted again; review4_test.ts allows 5 %). Each key written once.
 */
async function assertSumsWithin(path: string, count: number, slack: number): Promise<void> {
  const finals = (await outputs(path)).filter((o) => o.final);
  const want = expectedSums(count, KEYS);
  const got = Object.fromEntries(finals.map((f) => [f.key!, f.sum!]));
  assert.equal(finals.length, Object.keys(want).length, "keys written");
  const over: string[] = [];
  for (const [k, v] of Object.entries(want)) {
    assert.ok(got[k]! >= v, `${k}: ${got[k]} < ${v}: records lost`);
    if (got[k]! > v * (1 + slack)) {
      over.push(`${k} ${got[k]}/${v} (+${Math.round((got[k]! / v - 1) * 100)} %)`);
    }
  }
  assert.deepEqual(over, [], `keys counted more than ${slack * 100} % over`);
}

// ---------------------------------------------------------------------------------------------
// 1. An instance below fails while it finishes, after the instance above was retired as done.

for (const mode of modes) {
  for (const how of hows(mode)) {
    Deno.test({
      name:
        `${mode}: a pass-through's flush() fails (${how}) once its source was retired as done: each id once, restarted once`,
      ...loose,
      fn: async () => {
        const f = await faultFiles("sluice-r9-");
        try {
          const out = `${f.dir}/out`, log = `${f.dir}/src`, closed = `${f.dir}/src-closed`;
          const s = await resolves(
            make(mode)
              .from(ref("src", { count: COUNT, perPull: 100, log, closedFile: closed }, "source"), {
                name: "src",
                fuse: false,
                permissions: f.perms,
              })
              .via(
                ref("hop", {
                  fault: { at: "flush", how, marker: f.marker, waitFor: closed, lagMs: 100 },
                }),
                { name: "hop", fuse: false, permissions: f.perms },
              )
              .to(ref("sink", { out }, "sink"), { name: "out", fuse: false, permissions: f.perms }),
          );
          assert.ok(exists(`${f.marker}.1`), "hop failed");
          await assertIds(out, COUNT, true);
          assert.deepEqual(codes(s), [`hop ${codeOf(how)}`]);
          assert.equal(s.stages.hop?.restarts, 1);
          assert.equal(s.stages.src?.out, COUNT);
          assert.equal(s.stages.out?.out, COUNT);
          assert.equal((await lines(log)).filter((l) => l.startsWith("open")).length, 1);
        } finally {
          await Deno.remove(f.dir, { recursive: true });
        }
      },
    });

    for (const at of ["flush", "wmEnd"] as const) {
      const where = at === "flush" ? "flush()" : "onWatermark(∞), before its flush";
      Deno.test({
        name:
          `${mode}: a keyed sum fails (${how}) in ${where} after its last checkpoint, its source retired as done: exact sums, each key once`,
        ...loose,
        fn: async () => {
          const f = await faultFiles("sluice-r9-");
          try {
            const out = `${f.dir}/out`, log = `${f.dir}/src`, closed = `${f.dir}/src-closed`;
            const s = await resolves(
              make(mode)
                .from(
                  ref("src", {
                    count: COUNT,
                    perPull: 100,
                    log,
                    closedFile: closed,
                    // The sum checkpoints everything meanwhile: the source's acks all come in.
                    endDelayMs: 300,
                  }, "source"),
                  { name: "src", fuse: false, permissions: f.perms },
                )
                .keyBy()
                .via(
                  ref("sum", {
                    fault: { at, how, marker: f.marker, instance: 1, waitFor: closed, lagMs: 100 },
                  }),
                  { name: "sum", parallelism: 2, fuse: false, permissions: f.perms },
                )
                .to(ref("sink", { out }, "sink"), {
                  name: "out",
                  fuse: false,
                  permissions: f.perms,
                }),
            );
            assert.ok(exists(`${f.marker}.1`), "sum failed");
            await assertSums(out, COUNT, true);
            assert.deepEqual(codes(s), [`sum ${codeOf(how)}`]);
            assert.equal(s.stages.sum?.restarts, 1);
            assert.equal(s.stages.src?.out, COUNT);
            // A task that fails reports its counts; one whose worker dies loses the last ones.
            if (how === "throw") assert.equal(s.stages.sum?.in, COUNT);
            assert.equal(s.stages.out?.out, KEYS);
            assert.equal((await lines(log)).filter((l) => l.startsWith("open")).length, 1);
          } finally {
            await Deno.remove(f.dir, { recursive: true });
          }
        },
      });
    }
  }
}

// A worker that closes itself says nothing: it is found by its missed heartbeats.
Deno.test({
  name:
    "workers: a keyed sum's worker closes itself in flush() once its source was retired: found by heartbeat, exact sums",
  ...loose,
  fn: async () => {
    const f = await faultFiles("sluice-r9-");
    try {
      const out = `${f.dir}/out`, closed = `${f.dir}/src-closed`;
      const s = await resolves(
        make("workers", { heartbeatMs: 400 })
          .from(
            ref(
              "src",
              { count: COUNT, perPull: 100, closedFile: closed, endDelayMs: 300 },
              "source",
            ),
            { name: "src", fuse: false, permissions: f.perms },
          )
          .keyBy()
          .via(
            ref("sum", {
              fault: { at: "flush", how: "close", marker: f.marker, instance: 0, waitFor: closed },
            }),
            { name: "sum", parallelism: 2, fuse: false, permissions: f.perms },
          )
          .to(ref("sink", { out }, "sink"), { name: "out", fuse: false, permissions: f.perms }),
      );
      await assertSums(out, COUNT, true);
      assert.deepEqual(codes(s), ["sum E_HEARTBEAT"]);
      assert.equal(s.stages.sum?.restarts, 1);
    } finally {
      await Deno.remove(f.dir, { recursive: true });
    }
  },
});

for (const mode of modes) {
  Deno.test({
    name:
      `${mode}: the sink's flush() fails once after the sum above was retired, whose close() threw: exact sums once, both reported`,
    ...loose,
    fn: async () => {
      const f = await faultFiles("sluice-r9-");
      try {
        const out = `${f.dir}/out`, sumClosed = `${f.dir}/sum-closed`;
        const s = await resolves(
          make(mode)
            .from(ref("src", { count: COUNT, perPull: 100 }, "source"), {
              name: "src",
              fuse: false,
            })
            .keyBy()
            .via(
              ref("sum", {
                closedFile: sumClosed,
                fault: { at: "close", marker: `${f.marker}-sum` },
              }),
              { name: "sum", fuse: false, permissions: f.perms },
            )
            .to(
              ref("sink", {
                out,
                fault: {
                  at: "flush",
                  marker: `${f.marker}-out`,
                  waitFor: `${sumClosed}.0`,
                  lagMs: 100,
                },
              }, "sink"),
              { name: "out", fuse: false, permissions: f.perms },
            ),
        );
        await assertSums(out, COUNT, true);
        assert.deepEqual(codes(s), ["out Error", "sum Error"]);
        assert.match(
          s.failures.find((x) => x.stage === "sum")!.message,
          /Cannot close stage "sum"/,
        );
        assert.equal(s.stages.out?.restarts, 1);
        assert.equal(s.stages.sum?.restarts, 0);
      } finally {
        await Deno.remove(f.dir, { recursive: true });
      }
    },
  });
}

// ---------------------------------------------------------------------------------------------
// 2. The same instance failing again during its own replay; near the end.

for (const mode of modes) {
  Deno.test({
    name:
      `${mode}: a keyed sum instance fails three times in a row, twice during its own replay: exact sums, each key once`,
    ...loose,
    fn: async () => {
      const f = await faultFiles("sluice-r9-");
      try {
        const out = `${f.dir}/out`, count = 3000;
        const s = await resolves(
          make(mode)
            .from(ref("src", { count, perPull: 50, delayMs: 2 }, "source"), {
              name: "src",
              fuse: false,
            })
            .keyBy()
            .via(
              ref("sum", {
                fault: { at: "batch", id: 1500, times: 3, instance: 0, marker: f.marker },
              }),
              { name: "sum", parallelism: 2, fuse: false, permissions: f.perms },
            )
            .to(ref("sink", { out }, "sink"), { name: "out", fuse: false, permissions: f.perms }),
        );
        await assertSums(out, count, true);
        assert.deepEqual(codes(s), ["sum Error", "sum Error", "sum Error"]);
        assert.equal(s.stages.sum?.restarts, 3);
      } finally {
        await Deno.remove(f.dir, { recursive: true });
      }
    },
  });

  Deno.test({
    name:
      `${mode}: a keyed sum fails on the last batch and again during the replay, as its source ends: exact sums, each key once`,
    ...loose,
    fn: async () => {
      const f = await faultFiles("sluice-r9-");
      try {
        const out = `${f.dir}/out`;
        const s = await resolves(
          make(mode)
            .from(ref("src", { count: COUNT, perPull: 100 }, "source"), {
              name: "src",
              fuse: false,
            })
            .keyBy()
            .via(
              ref("sum", { fault: { at: "batch", id: COUNT - 1, times: 2, marker: f.marker } }),
              { name: "sum", parallelism: 2, fuse: false, permissions: f.perms },
            )
            .to(ref("sink", { out }, "sink"), { name: "out", fuse: false, permissions: f.perms }),
        );
        await assertSums(out, COUNT, true);
        assert.deepEqual(codes(s), ["sum Error", "sum Error"]);
      } finally {
        await Deno.remove(f.dir, { recursive: true });
      }
    },
  });

  Deno.test({
    name:
      `${mode}: a keyed sum's flush() fails twice in a row after its source was retired: exact sums, each key once`,
    ...loose,
    fn: async () => {
      const f = await faultFiles("sluice-r9-");
      try {
        const out = `${f.dir}/out`, closed = `${f.dir}/src-closed`;
        const s = await resolves(
          make(mode)
            .from(
              ref(
                "src",
                { count: COUNT, perPull: 100, closedFile: closed, endDelayMs: 300 },
                "source",
              ),
              { name: "src", fuse: false, permissions: f.perms },
            )
            .keyBy()
            .via(
              ref("sum", { fault: { at: "flush", times: 2, marker: f.marker, waitFor: closed } }),
              { name: "sum", parallelism: 2, fuse: false, permissions: f.perms },
            )
            .to(ref("sink", { out }, "sink"), { name: "out", fuse: false, permissions: f.perms }),
        );
        await assertSums(out, COUNT, true);
        assert.deepEqual(codes(s), ["sum Error", "sum Error"]);
        assert.equal(s.stages.sum?.restarts, 2);
      } finally {
        await Deno.remove(f.dir, { recursive: true });
      }
    },
  });
}

// ---------------------------------------------------------------------------------------------
// 3. Two instances failing at about the same time, one above the other; a failure above a
//    stateful stage whose last checkpoint is ahead of what its upstream will replay.

for (const mode of modes) {
  Deno.test({
    name:
      `${mode}: a pass-through and the keyed sum below it fail on the same records: every record counted once`,
    ...loose,
    fn: async () => {
      const f = await faultFiles("sluice-r9-");
      try {
        const out = `${f.dir}/out`, count = 3000;
        const s = await resolves(
          make(mode)
            .from(ref("src", { count, perPull: 50, delayMs: 2 }, "source"), {
              name: "src",
              fuse: false,
            })
            .via(ref("hop", { fault: { at: "batch", id: 1500, marker: `${f.marker}-hop` } }), {
              name: "hop",
              fuse: false,
              permissions: f.perms,
            })
            .keyBy()
            .via(ref("sum", { fault: { at: "batch", id: 1450, marker: `${f.marker}-sum` } }), {
              name: "sum",
              fuse: false,
              permissions: f.perms,
            })
            .to(ref("sink", { out }, "sink"), { name: "out", fuse: false, permissions: f.perms }),
        );
        // hop is stateless above a sum at parallelism 1: exact (the window a stateless instance
        // dying just after a checkpoint left is closed: its source drops what the checkpoint holds).
        await assertSumsWithin(out, count, 0);
        // The sum may fail in its old incarnation once it was killed (as a victim of hop's
        // failure): that failure is not heard, and its replacement does not fail again.
        assert.ok(codes(s).includes("hop Error"), JSON.stringify(codes(s)));
        for (const c of codes(s)) assert.ok(["hop Error", "sum Error"].includes(c), c);
      } finally {
        await Deno.remove(f.dir, { recursive: true });
      }
    },
  });

  // Was a bug. Expected (README, Supervision; State and checkpoints): a restart takes the stateful
  // instances below back to their last checkpoints and replays the failed instance's unacked
  // input, "no loss, no double counting in its state" but for one window: a stateless instance
  // that dies "just after a checkpoint below it was stored, before it heard of it" (a batch or
  // two; review4_test.ts allows 5 %). What happens: hop (stateless, parallelism 1) splits each
  // source batch between sum#0 and sum#1; the source's batch is acked only once both parts are
  // held by stored checkpoints. sum#1 is slower (10 ms a batch) and checkpoints later than sum#0.
  // When hop fails, the source replays every batch sum#1 has not checkpointed yet, and hop's
  // replacement sends sum#0 its part again, while sum#0 is restored to its *last* checkpoint,
  // which holds that part already: sum#0's keys come out 30–60 % over (every run; sum#1's keys
  // are exact). hop had heard of sum#0's checkpoints long before: this is not the documented
  // window, whose size is bounded by an ack in flight; here it is bounded by how far sum#1 lags.
  // Cause: actors/_runtime.ts:635-642 and 666-675 (#failure: the region's stateful
  // victims restore their latest checkpoint, Runtime.#load) with :293-298 (#checkpoint acks only
  // the direct sender's batches): nothing makes a checkpoint below consistent with the replay
  // point above, which is the *oldest* unacked source batch across all the instances it fans out
  // to (actors/_task.ts:772-775, a stateless task acks an input batch once all its outputs are).
  // Fixed by aligned checkpoints (barriers from the sources, as Flink's): sum#0 and sum#1 store
  // their state at the same cut, and the input they cover is acked only then.
  Deno.test({
    name:
      `${mode}: a pass-through fails once above a keyed sum at parallelism 2 whose instance 1 lags: exact sums (was a bug: sum#0 counted the replay again, 30-60 % over)`,
    ...loose,
    fn: async () => {
      const f = await faultFiles("sluice-r9-");
      try {
        const out = `${f.dir}/out`, count = 3000, snap = `${f.dir}/snap`;
        const s = await resolves(
          make(mode, { checkpointMs: 60_000 })
            .from(ref("src", { count, perPull: 30, delayMs: 2 }, "source"), {
              name: "src",
              fuse: false,
            })
            // It fails on its first batch after sum#0 stored a checkpoint holding id 800.
            .via(ref("hop", { fault: { at: "batch", waitFor: snap, marker: f.marker } }), {
              name: "hop",
              fuse: false,
              permissions: f.perms,
            })
            .keyBy()
            .via(
              ref("sum", {
                slowInstance: 1,
                batchDelayMs: 10,
                snapAt: 800,
                snapFile: snap,
              }),
              { name: "sum", parallelism: 2, fuse: false, permissions: f.perms },
            )
            .to(ref("sink", { out }, "sink"), { name: "out", fuse: false, permissions: f.perms }),
        );
        assert.ok(exists(`${f.marker}.1`), "hop failed");
        await assertSumsWithin(out, count, 0);
        assert.deepEqual(codes(s), ["hop Error"]);
      } finally {
        await Deno.remove(f.dir, { recursive: true });
      }
    },
  });

  // Was a bug. Expected: as above ("no double counting in its state"); the README's window is for a
  // stateless instance only. What happens: "upper" (stateful, keyed, passes records on) is
  // checkpointed less often than "sum" below it (capacity 64: it asks at 128 held batches; the
  // sum asks whenever idle), and its checkpoint can never be ahead of the sum's: the snapshot
  // reply waits for its outputs to be acked, i.e. held by a stored checkpoint below
  // (actors/_task.ts:314-331). upper fails in its first snapshot() after the sum stored a
  // checkpoint holding id 1000: upper restarts from its older checkpoint (or none), the source
  // replays everything after it, and the sum, restored to its latest checkpoint as a victim of
  // the restart, counts all of that again: 40–100 % over on every key (every run, both modes;
  // a plain throw from beforeBatch instead of snapshot() shows the same, in 7–9 runs of 10).
  // Cause: actors/_runtime.ts:635-642, 666-675 (#failure/#victims restore the region
  // below to its latest checkpoint, which holds effects of input the failed stateful instance's
  // own latest checkpoint does not) and :293-298 (#checkpoint acks a stateful upstream's output
  // batches upstream at once, though that upstream's input stays unacked until its own,
  // later, checkpoint). Now both go back to the same aligned checkpoint: the sums are exact, not
  // just within the stateless window's 5 %. Failing in snapshot() aborts the checkpoint it was
  // taking; failing on a batch, the one under way if any.
  for (const at of ["snapshot", "batch"] as const) {
    Deno.test({
      name:
        `${mode}: a stateful pass-through fails once above a keyed sum (in ${at}): exact sums (was a bug: the sum counted the replay again, 40-100 % over)`,
      ...loose,
      fn: async () => {
        const f = await faultFiles("sluice-r9-");
        try {
          const out = `${f.dir}/out`, count = 3000, snap = `${f.dir}/snap`;
          const s = await resolves(
            make(mode, { checkpointMs: 60_000 })
              .from(ref("src", { count, perPull: 30, delayMs: 2 }, "source"), {
                name: "src",
                fuse: false,
              })
              .keyBy()
              // It fails in its first snapshot() after the sum below stored a checkpoint holding
              // id 1000 (capacity 64: its own checkpoints are asked for rarely).
              .via(
                ref("sum", {
                  pass: true,
                  finals: false,
                  fault: { at, waitFor: snap, marker: f.marker },
                }),
                { name: "upper", fuse: false, capacity: 64, permissions: f.perms },
              )
              .keyBy()
              .via(ref("sum", { snapAt: 1000, snapFile: snap }), {
                name: "sum",
                fuse: false,
                permissions: f.perms,
              })
              .to(ref("sink", { out }, "sink"), { name: "out", fuse: false, permissions: f.perms }),
          );
          assert.ok(exists(`${f.marker}.1`), "upper failed");
          await assertSumsWithin(out, count, 0);
          assert.deepEqual(codes(s), ["upper Error"]);
        } finally {
          await Deno.remove(f.dir, { recursive: true });
        }
      },
    });
  }
}

// ---------------------------------------------------------------------------------------------
// 4. A failure during scale() of a keyed stateful stage while the source ends.

for (const mode of modes) {
  for (const [from, to] of [[2, 3], [3, 1]] as const) {
    Deno.test({
      name:
        `${mode}: scale(${from}→${to}) of a keyed sum as its source ends, an instance's snapshot() failing: scale settles, exact sums, each key once`,
      ...loose,
      fn: async () => {
        const f = await faultFiles("sluice-r9-");
        try {
          const out = `${f.dir}/out`, near = `${f.dir}/near`, trigger = `${f.dir}/trigger`;
          const count = 4000;
          const p = make(mode)
            .from(
              ref("src", {
                count,
                perPull: 50,
                delayMs: 3,
                nearAt: count - 1500,
                nearFile: near,
              }, "source"),
              { name: "src", fuse: false, permissions: f.perms },
            )
            .keyBy()
            .via(
              ref("sum", {
                fault: { at: "snapshot", waitFor: trigger, marker: f.marker, instance: 0 },
              }),
              { name: "sum", parallelism: from, fuse: false, permissions: f.perms },
            )
            .to(ref("sink", { out }, "sink"), { name: "out", fuse: false, permissions: f.perms });
          const running = p.run();
          running.catch(() => {});
          await until(() => exists(near), 10_000, "the source near its end");
          Deno.writeTextFileSync(trigger, "x");
          const scaled = await settles(
            p.scale("sum", to).then(() => "scaled", (e: Error) => e),
            10_000,
            "scale()",
          );
          if (scaled instanceof Error) {
            assert.ok(scaled instanceof RangeError, String(scaled));
            assert.match(scaled.message, /finishing/);
          }
          const s = await settles(running, 15_000, "run()");
          await assertSums(out, count, true);
          assert.ok(exists(`${f.marker}.1`), "a snapshot failed");
          for (const c of codes(s)) assert.equal(c, "sum Error");
          assert.equal(s.stages.src?.out, count);
        } finally {
          await Deno.remove(f.dir, { recursive: true });
        }
      },
    });
  }
}

// ---------------------------------------------------------------------------------------------
// 5. A failure while stop() drains.

for (const mode of modes) {
  for (const how of hows(mode)) {
    Deno.test({
      name:
        `${mode}: stop() while a keyed sum's flush() fails (${how}) during the drain: stop() resolves, not forced, exact sums of what was read`,
      ...loose,
      fn: async () => {
        const f = await faultFiles("sluice-r9-");
        try {
          const out = `${f.dir}/out`, log = `${f.dir}/src`;
          const p = make(mode)
            .from(ref("src", { perPull: 20, delayMs: 3, log }, "source"), {
              name: "src",
              fuse: false,
              permissions: f.perms,
            })
            .keyBy()
            .via(ref("sum", { fault: { at: "flush", how, instance: 0, marker: f.marker } }), {
              name: "sum",
              parallelism: 2,
              fuse: false,
              permissions: f.perms,
            })
            .to(ref("sink", { out }, "sink"), { name: "out", fuse: false, permissions: f.perms });
          const running = p.run();
          const outcome = running.then((s) => s, (e: Error) => e);
          await until(
            () => exists(log) && (Deno.readTextFileSync(log).match(/ack/g)?.length ?? 0) > 5,
            10_000,
            "acks",
          );
          await settles(p.stop(), 3000 + 2000, "stop()");
          const s = await settles(outcome, 5000, "run()");
          if (s instanceof Error) assert.fail(`run() rejected: ${s.message}`);
          assert.ok(exists(`${f.marker}.1`), "sum failed");
          assert.deepEqual(codes(s), [`sum ${codeOf(how)}`]);
          const read = s.stages.src!.out;
          assert.ok(read > 0);
          await assertSums(out, read, true);
        } finally {
          await Deno.remove(f.dir, { recursive: true });
        }
      },
    });
  }

  Deno.test({
    name:
      `${mode}: stop() while the pass-through above a keyed sum fails on an in-flight batch: stop() resolves, exact sums of what was read`,
    ...loose,
    fn: async () => {
      const f = await faultFiles("sluice-r9-");
      try {
        const out = `${f.dir}/out`, log = `${f.dir}/src`, stopping = `${f.dir}/stopping`;
        const p = make(mode)
          .from(ref("src", { perPull: 20, delayMs: 3, log }, "source"), {
            name: "src",
            fuse: false,
            permissions: f.perms,
          })
          .via(ref("hop", { fault: { at: "batch", waitFor: stopping, marker: f.marker } }), {
            name: "hop",
            fuse: false,
            permissions: f.perms,
          })
          .keyBy()
          .via(ref("sum", {}), { name: "sum", fuse: false })
          .to(ref("sink", { out }, "sink"), { name: "out", fuse: false, permissions: f.perms });
        const running = p.run();
        const outcome = running.then((s) => s, (e: Error) => e);
        await until(
          () => exists(log) && (Deno.readTextFileSync(log).match(/ack/g)?.length ?? 0) > 5,
          10_000,
          "acks",
        );
        Deno.writeTextFileSync(stopping, "x");
        await settles(p.stop(), 3000 + 2000, "stop()");
        const s = await settles(outcome, 5000, "run()");
        if (s instanceof Error) assert.fail(`run() rejected: ${s.message}`);
        // The source may have stopped before hop saw another batch.
        for (const c of codes(s)) assert.equal(c, "hop Error");
        // hop is stateless above a sum at parallelism 1: exact.
        await assertSumsWithin(out, s.stages.src!.out, 0);
      } finally {
        await Deno.remove(f.dir, { recursive: true });
      }
    },
  });
}

// ---------------------------------------------------------------------------------------------
// 6. Escalation (maxRestarts exceeded) while other instances finish.

for (const mode of modes) {
  for (const how of hows(mode)) {
    Deno.test({
      name:
        `${mode}: a keyed sum instance whose flush() always fails (${how}) escalates while the other finishes: run() rejects naming it, stop() resolves`,
      ...loose,
      fn: async () => {
        const f = await faultFiles("sluice-r9-");
        try {
          const out = `${f.dir}/out`;
          const p = make(mode)
            .from(ref("src", { count: COUNT, perPull: 100, endDelayMs: 200 }, "source"), {
              name: "src",
              fuse: false,
            })
            .keyBy()
            .via(
              ref("sum", {
                closeDelayMs: 300,
                fault: { at: "flush", how, always: true, instance: 1, marker: f.marker },
              }),
              {
                name: "sum",
                parallelism: 2,
                fuse: false,
                maxRestarts: 2,
                permissions: f.perms,
              },
            )
            .to(ref("sink", { out, closeDelayMs: 300 }, "sink"), {
              name: "out",
              fuse: false,
              permissions: f.perms,
            });
          const got = await ends(p, 15_000);
          assert.ok(got instanceof Error, "run() resolved");
          assert.equal(got.name, "PipelineError");
          assert.match(
            got.message,
            new RegExp(
              `stage "sum" instance 1 \\(partitions [0-9,]+\\) failed 3 times within 10000 ms; ` +
                `last cause ${codeOf(how)}`,
            ),
          );
          await settles(p.stop(), 5000, "stop() after the escalation");
        } finally {
          await Deno.remove(f.dir, { recursive: true });
        }
      },
    });
  }

  Deno.test({
    name:
      `${mode}: stop() under way when a pass-through escalates during the drain: run() rejects naming it, stop() resolves`,
    ...loose,
    fn: async () => {
      const f = await faultFiles("sluice-r9-");
      try {
        const out = `${f.dir}/out`, log = `${f.dir}/src`;
        const p = make(mode)
          .from(ref("src", { perPull: 20, delayMs: 3, log }, "source"), {
            name: "src",
            fuse: false,
            permissions: f.perms,
          })
          .via(ref("hop", { fault: { at: "flush", always: true, marker: f.marker } }), {
            name: "hop",
            fuse: false,
            maxRestarts: 1,
            permissions: f.perms,
          })
          .to(ref("sink", { out, closeDelayMs: 200 }, "sink"), {
            name: "out",
            fuse: false,
            permissions: f.perms,
          });
        const running = p.run();
        const outcome = running.then((s) => s, (e: Error) => e);
        await until(
          () => exists(log) && (Deno.readTextFileSync(log).match(/ack/g)?.length ?? 0) > 5,
          10_000,
          "acks",
        );
        await settles(p.stop(), 5000, "stop()");
        const got = await settles(outcome, 5000, "run()");
        assert.ok(got instanceof Error, "run() resolved");
        assert.equal(got.name, "PipelineError");
        assert.match(
          got.message,
          /stage "hop" instance 0 failed 2 times within 10000 ms; last cause Error: injected failure in flush/,
        );
        // What was read before the stop was written (at least once), the escalation aside.
        const ids = new Set((await outputs(out)).map((o) => o.id));
        assert.ok(ids.size > 0);
      } finally {
        await Deno.remove(f.dir, { recursive: true });
      }
    },
  });
}

// ---------------------------------------------------------------------------------------------
// 7. Fused: the failing stage shares its task with the source (or the sink).

for (const mode of modes) {
  Deno.test({
    name:
      `${mode}: fused source → pass-through → sink, the pass-through's flush() fails once: every id written, the run ends`,
    ...loose,
    fn: async () => {
      const f = await faultFiles("sluice-r9-");
      try {
        const out = `${f.dir}/out`, log = `${f.dir}/src`;
        const s = await resolves(
          make(mode)
            .from(ref("src", { count: COUNT, perPull: 100, log }, "source"), {
              name: "src",
              permissions: f.perms,
            })
            .via(ref("hop", { fault: { at: "flush", marker: f.marker } }), {
              name: "hop",
              permissions: f.perms,
            })
            .to(ref("sink", { out }, "sink"), { name: "out", permissions: f.perms }),
        );
        // The source cannot seek here: it is read again (at-least-once).
        await assertIds(out, COUNT, false);
        assert.deepEqual(codes(s), ["hop Error"]);
        assert.equal(s.stages.hop?.restarts, 1);
      } finally {
        await Deno.remove(f.dir, { recursive: true });
      }
    },
  });

  for (const how of hows(mode)) {
    Deno.test({
      name:
        `${mode}: fused source → keyed sum → sink at parallelism 1, the sum's flush() fails (${how}) once: resumed at its checkpoint, exact sums, each key once`,
      ...loose,
      fn: async () => {
        const f = await faultFiles("sluice-r9-");
        try {
          const out = `${f.dir}/out`, log = `${f.dir}/src`;
          const s = await resolves(
            make(mode)
              .from(ref("src", { count: COUNT, perPull: 100, log }, "source"), {
                name: "src",
                permissions: f.perms,
              })
              .keyBy()
              .via(ref("sum", { fault: { at: "flush", how, marker: f.marker } }), {
                name: "sum",
                permissions: f.perms,
              })
              .to(ref("sink", { out }, "sink"), { name: "out", permissions: f.perms }),
          );
          await assertSums(out, COUNT, true);
          // A worker that dies says nothing of the stage: its failure is the task's first stage's.
          assert.deepEqual(codes(s), [how === "throw" ? "sum Error" : "src E_WORKER"]);
          const opens = (await lines(log)).filter((l) => l.startsWith("open"));
          assert.equal(opens.length, 2, JSON.stringify(opens));
        } finally {
          await Deno.remove(f.dir, { recursive: true });
        }
      },
    });
  }

  Deno.test({
    name:
      `${mode}: keyed sum fused with its sink, the sink's flush() fails once after the sums were written: exact sums (written again at most)`,
    ...loose,
    fn: async () => {
      const f = await faultFiles("sluice-r9-");
      try {
        const out = `${f.dir}/out`;
        const s = await resolves(
          make(mode)
            .from(ref("src", { count: COUNT, perPull: 100 }, "source"), {
              name: "src",
              fuse: false,
            })
            .keyBy()
            .via(ref("sum", {}), { name: "sum" })
            .to(ref("sink", { out, fault: { at: "flush", marker: f.marker } }, "sink"), {
              name: "out",
              permissions: f.perms,
            }),
        );
        await assertSums(out, COUNT, false);
        assert.deepEqual(codes(s), ["out Error"]);
      } finally {
        await Deno.remove(f.dir, { recursive: true });
      }
    },
  });
}

// ---------------------------------------------------------------------------------------------
// 8. More coincidences at the end: a spent source (its last ack fails) and a failure below it;
//    a final checkpoint that fails after the flush emitted; a new instance of a rescale that
//    fails to open; an escalation during a rescale or under one_for_all; a stateless hop failing
//    again and again near the end.

for (const mode of modes) {
  for (const below of ["hop", "sum"] as const) {
    for (const first of ["source", below] as const) {
      Deno.test({
        name:
          `${mode}: the source's last ack fails once it is spent, and the ${below} below fails in flush() about then, ${first} first: ${
            below === "sum" ? "exact sums" : "every id written"
          }, the run ends`,
        ...loose,
        fn: async () => {
          const f = await faultFiles("sluice-r9-");
          try {
            const out = `${f.dir}/out`, log = `${f.dir}/src`, ended = `${f.dir}/src-ended`;
            const srcFailed = `${f.dir}/src-failed`, belowFailed = `${f.dir}/below-failed`;
            const fault = {
              at: "flush",
              marker: `${f.marker}-below`,
              failedFile: belowFailed,
              ...(first === "source" ? { waitFor: srcFailed, lagMs: 50 } : {}),
            };
            // The last ack fails once the source has ended (returned null): it has passed
            // everything on then (all its batches are acked), it is spent.
            const ackFault = {
              marker: `${f.marker}-src`,
              failedFile: srcFailed,
              waitFor: first === "source" ? [ended] : [ended, belowFailed],
              lagMs: 50,
            };
            let flow = make(mode)
              .from(
                ref("src", {
                  count: COUNT,
                  perPull: 100,
                  log,
                  ackFault,
                  endedFile: ended,
                  // The sum checkpoints everything meanwhile: the last ack is called before the
                  // end, and fails once the end has come.
                  ...(below === "sum" ? { endDelayMs: 200 } : {}),
                }, "source"),
                { name: "src", fuse: false, permissions: f.perms },
              );
            if (below === "sum") flow = flow.keyBy();
            const s = await resolves(
              flow
                .via(ref(below, { fault }), {
                  name: below,
                  fuse: false,
                  permissions: f.perms,
                  ...(below === "sum" ? { parallelism: 2 } : {}),
                })
                .to(ref("sink", { out }, "sink"), {
                  name: "out",
                  fuse: false,
                  permissions: f.perms,
                }),
            );
            assert.ok(exists(srcFailed) && exists(belowFailed), "both failed");
            if (below === "sum") await assertSums(out, COUNT, true);
            // The hop failing first, the acks of what the sink wrote went to the dead hop: the
            // source replays it (at-least-once).
            else await assertIds(out, COUNT, first === "source");
            assert.deepEqual(codes(s), [`${below} Error`, "src Error"].sort());
            assert.equal(s.stages.src?.restarts, 0);
            assert.equal(s.stages[below]?.restarts, 1);
            assert.equal((await lines(log)).filter((l) => l.startsWith("open")).length, 1);
          } finally {
            await Deno.remove(f.dir, { recursive: true });
          }
        },
      });
    }
  }

  Deno.test({
    name:
      `${mode}: a keyed sum's final checkpoint fails after its flush emitted: exact sums (written again at most)`,
    ...loose,
    fn: async () => {
      const f = await faultFiles("sluice-r9-");
      try {
        const out = `${f.dir}/out`, flushed = `${f.dir}/flushed`;
        const s = await resolves(
          make(mode)
            .from(ref("src", { count: COUNT, perPull: 100 }, "source"), {
              name: "src",
              fuse: false,
            })
            .keyBy()
            // Its first snapshot after its flush emitted: the final checkpoint (or one just
            // before it).
            .via(
              ref("sum", {
                flushedFile: flushed,
                fault: { at: "snapshot", waitFor: flushed, marker: f.marker },
              }),
              { name: "sum", parallelism: 2, fuse: false, permissions: f.perms },
            )
            .to(ref("sink", { out }, "sink"), { name: "out", fuse: false, permissions: f.perms }),
        );
        assert.ok(exists(`${f.marker}.1`), "a snapshot failed");
        await assertSums(out, COUNT, false);
        assert.deepEqual(codes(s), ["sum Error"]);
      } finally {
        await Deno.remove(f.dir, { recursive: true });
      }
    },
  });

  Deno.test({
    name:
      `${mode}: scale(2→3) of a keyed sum as its source ends, the new instance's open() failing once: scale settles, exact sums`,
    ...loose,
    fn: async () => {
      const f = await faultFiles("sluice-r9-");
      try {
        const out = `${f.dir}/out`, near = `${f.dir}/near`, count = 4000;
        const p = make(mode)
          .from(
            ref(
              "src",
              { count, perPull: 50, delayMs: 3, nearAt: count - 1500, nearFile: near },
              "source",
            ),
            { name: "src", fuse: false, permissions: f.perms },
          )
          .keyBy()
          .via(ref("sum", { fault: { at: "open", instance: 2, marker: f.marker } }), {
            name: "sum",
            parallelism: 2,
            fuse: false,
            permissions: f.perms,
          })
          .to(ref("sink", { out }, "sink"), { name: "out", fuse: false, permissions: f.perms });
        const running = p.run();
        running.catch(() => {});
        await until(() => exists(near), 10_000, "the source near its end");
        const scaled = await settles(
          p.scale("sum", 3).then(() => "scaled", (e: Error) => e),
          10_000,
          "scale()",
        );
        if (scaled instanceof Error) assert.match(scaled.message, /finishing/);
        const s = await settles(running, 15_000, "run()");
        await assertSums(out, count, true);
        for (const c of codes(s)) assert.equal(c, "sum Error");
      } finally {
        await Deno.remove(f.dir, { recursive: true });
      }
    },
  });

  Deno.test({
    name:
      `${mode}: a keyed sum escalates during scale() as its source ends: run() rejects naming it, scale() and stop() settle`,
    ...loose,
    fn: async () => {
      const f = await faultFiles("sluice-r9-");
      try {
        const out = `${f.dir}/out`, near = `${f.dir}/near`, trigger = `${f.dir}/trigger`;
        const count = 4000;
        const p = make(mode)
          .from(
            ref(
              "src",
              { count, perPull: 50, delayMs: 3, nearAt: count - 1500, nearFile: near },
              "source",
            ),
            { name: "src", fuse: false, permissions: f.perms },
          )
          .keyBy()
          .via(
            ref("sum", {
              fault: {
                at: "snapshot",
                waitFor: trigger,
                always: true,
                instance: 0,
                marker: f.marker,
              },
            }),
            { name: "sum", parallelism: 2, fuse: false, maxRestarts: 1, permissions: f.perms },
          )
          .to(ref("sink", { out }, "sink"), { name: "out", fuse: false, permissions: f.perms });
        const running = p.run();
        const outcome = running.then((s) => s, (e: Error) => e);
        await until(() => exists(near), 10_000, "the source near its end");
        Deno.writeTextFileSync(trigger, "x");
        await settles(p.scale("sum", 3).catch(() => {}), 10_000, "scale()");
        const got = await settles(outcome, 15_000, "run()");
        assert.ok(got instanceof Error, "run() resolved");
        assert.equal(got.name, "PipelineError");
        assert.match(got.message, /stage "sum" instance 0 \(partitions [0-9,]+\) failed 2 times/);
        await settles(p.stop(), 5000, "stop()");
      } finally {
        await Deno.remove(f.dir, { recursive: true });
      }
    },
  });

  Deno.test({
    name:
      `${mode}: one_for_all keyed sums, instance 1's flush() always fails while instance 0 closes slowly: run() rejects naming it`,
    ...loose,
    fn: async () => {
      const f = await faultFiles("sluice-r9-");
      try {
        const out = `${f.dir}/out`;
        const p = make(mode)
          .from(ref("src", { count: COUNT, perPull: 100, endDelayMs: 200 }, "source"), {
            name: "src",
            fuse: false,
          })
          .keyBy()
          .via(
            ref("sum", {
              closeDelayMs: 400,
              fault: { at: "flush", always: true, instance: 1, marker: f.marker },
            }),
            {
              name: "sum",
              parallelism: 2,
              fuse: false,
              maxRestarts: 2,
              strategy: "one_for_all",
              permissions: f.perms,
            },
          )
          .to(ref("sink", { out }, "sink"), { name: "out", fuse: false, permissions: f.perms });
        const got = await ends(p, 15_000);
        assert.ok(got instanceof Error, "run() resolved");
        assert.match(got.message, /stage "sum" instance 1 \(partitions [0-9,]+\) failed 3 times/);
        await settles(p.stop(), 5000, "stop()");
      } finally {
        await Deno.remove(f.dir, { recursive: true });
      }
    },
  });

  Deno.test({
    name:
      `${mode}: a pass-through fails three times in a row near the end, twice during its replay: every id written, the run ends`,
    ...loose,
    fn: async () => {
      const f = await faultFiles("sluice-r9-");
      try {
        const out = `${f.dir}/out`;
        const s = await resolves(
          make(mode)
            .from(ref("src", { count: COUNT, perPull: 100 }, "source"), {
              name: "src",
              fuse: false,
            })
            .via(
              ref("hop", { fault: { at: "batch", id: COUNT - 150, times: 3, marker: f.marker } }),
              {
                name: "hop",
                fuse: false,
                permissions: f.perms,
              },
            )
            .to(ref("sink", { out }, "sink"), {
              name: "out",
              parallelism: 2,
              fuse: false,
              permissions: f.perms,
            }),
        );
        await assertIds(out, COUNT, false);
        assert.deepEqual(codes(s), ["hop Error", "hop Error", "hop Error"]);
        assert.equal(s.stages.hop?.restarts, 3);
      } finally {
        await Deno.remove(f.dir, { recursive: true });
      }
    },
  });
}

// ---------------------------------------------------------------------------------------------
// 9. A worker dying in close(), once its input is done; a fused source task failing as stop()
//    drains: what the source committed was written.

for (const stageName of ["sum", "out"] as const) {
  Deno.test({
    name:
      `workers: the ${stageName} worker dies in close() once its source was retired: not restarted, exact sums once`,
    ...loose,
    fn: async () => {
      const f = await faultFiles("sluice-r9-");
      try {
        const out = `${f.dir}/out`;
        const fault = { at: "close", how: "timer", marker: f.marker };
        const s = await resolves(
          make("workers")
            .from(ref("src", { count: COUNT, perPull: 100 }, "source"), {
              name: "src",
              fuse: false,
            })
            .keyBy()
            .via(ref("sum", stageName === "sum" ? { fault } : {}), {
              name: "sum",
              parallelism: 2,
              fuse: false,
              permissions: f.perms,
            })
            .to(ref("sink", { out, ...(stageName === "out" ? { fault } : {}) }, "sink"), {
              name: "out",
              fuse: false,
              permissions: f.perms,
            }),
        );
        assert.ok(exists(`${f.marker}.1`), "a close() failed");
        await assertSums(out, COUNT, true);
        assert.deepEqual(codes(s), [`${stageName} E_WORKER`]);
        assert.equal(s.stages[stageName]?.restarts, 0);
      } finally {
        await Deno.remove(f.dir, { recursive: true });
      }
    },
  });
}

for (const mode of modes) {
  Deno.test({
    name:
      `${mode}: stop() while a pass-through fused with its source fails on an in-flight batch: every committed position was written, stop() resolves`,
    ...loose,
    fn: async () => {
      const f = await faultFiles("sluice-r9-");
      try {
        const out = `${f.dir}/out`, log = `${f.dir}/src`, stopping = `${f.dir}/stopping`;
        const p = make(mode)
          .from(ref("src", { perPull: 20, delayMs: 3, log }, "source"), {
            name: "src",
            permissions: f.perms,
          })
          .via(ref("hop", { fault: { at: "batch", waitFor: stopping, marker: f.marker } }), {
            name: "hop",
            permissions: f.perms,
          })
          .to(ref("sink", { out, writeDelayMs: 5 }, "sink"), {
            name: "out",
            fuse: false,
            permissions: f.perms,
          });
        const running = p.run();
        const outcome = running.then((s) => s, (e: Error) => e);
        await until(
          () => exists(log) && (Deno.readTextFileSync(log).match(/ack/g)?.length ?? 0) > 5,
          10_000,
          "acks",
        );
        Deno.writeTextFileSync(stopping, "x");
        await settles(p.stop(), 3000 + 2000, "stop()");
        const s = await settles(outcome, 5000, "run()");
        if (s instanceof Error) assert.fail(`run() rejected: ${s.message}`);
        const acked = Math.max(
          ...(await lines(log)).filter((l) => l.startsWith("ack")).map((l) => Number(l.slice(4))),
        );
        const ids = new Set((await outputs(out)).map((o) => o.id!));
        const missing = Array.from({ length: acked }, (_, i) => i).filter((i) => !ids.has(i));
        assert.deepEqual(missing.slice(0, 10), [], `${missing.length} committed ids not written`);
      } finally {
        await Deno.remove(f.dir, { recursive: true });
      }
    },
  });
}

// ---------------------------------------------------------------------------------------------
// 10. A pass-through dies after its end of stream while the keyed sums below it finish: they are
//     taken down with it (the region of a restart), finishing or closing.

for (
  const [when, sumOpts, dieAfter] of [
    ["closing", { closeDelayMs: 800 }, 200],
    ["flushing", { flushDelayMs: 400 }, 100],
  ] as const
) {
  Deno.test({
    name:
      `workers: a pass-through dies after its end of stream while the keyed sums below are ${when}: exact sums, the run ends`,
    ...loose,
    fn: async () => {
      const f = await faultFiles("sluice-r9-");
      try {
        const out = `${f.dir}/out`;
        const s = await resolves(
          make("workers")
            .from(ref("src", { count: COUNT, perPull: 100, endDelayMs: 300 }, "source"), {
              name: "src",
              fuse: false,
            })
            .via(
              ref("hop", {
                fault: { at: "flush", how: "timer", lagMs: dieAfter, marker: f.marker },
              }),
              { name: "hop", fuse: false, permissions: f.perms },
            )
            .keyBy()
            .via(ref("sum", sumOpts), { name: "sum", parallelism: 2, fuse: false })
            .to(ref("sink", { out }, "sink"), { name: "out", fuse: false, permissions: f.perms }),
        );
        assert.ok(exists(`${f.marker}.1`), "hop died");
        // Killed before their final checkpoint, the sums emit again from the one before.
        await assertSums(out, COUNT, when === "closing");
        assert.deepEqual(codes(s), ["hop E_WORKER"]);
      } finally {
        await Deno.remove(f.dir, { recursive: true });
      }
    },
  });
}

// ---------------------------------------------------------------------------------------------
// 11. The sink below a keyed stateful pass-through dies, twice in a row or during a rescale.

Deno.test({
  name:
    "workers: the sink below a keyed stateful pass-through dies twice in a row, the second time during its replay: every id written, exact sums",
  ...loose,
  fn: async () => {
    const f = await faultFiles("sluice-r9-");
    try {
      const out = `${f.dir}/out`, count = 3000;
      const s = await resolves(
        make("workers")
          .from(ref("src", { count, perPull: 50, delayMs: 2 }, "source"), {
            name: "src",
            fuse: false,
          })
          .keyBy()
          .via(ref("sum", { pass: true }), { name: "sum", parallelism: 2, fuse: false })
          .to(
            ref("sink", {
              out,
              fault: { at: "batch", id: 1500, how: "timer", times: 2, marker: f.marker },
            }, "sink"),
            { name: "out", fuse: false, permissions: f.perms },
          ),
      );
      await assertIds(out, count, false);
      await assertSums(out, count, true);
      assert.deepEqual(codes(s), ["out E_WORKER", "out E_WORKER"]);
      assert.equal(s.stages.out?.restarts, 2);
    } finally {
      await Deno.remove(f.dir, { recursive: true });
    }
  },
});

Deno.test({
  name:
    "workers: scale(2→3) of a keyed stateful pass-through as its source ends, the sink below dying during the rescale: every id written, exact sums",
  ...loose,
  fn: async () => {
    const f = await faultFiles("sluice-r9-");
    try {
      const out = `${f.dir}/out`, near = `${f.dir}/near`, trigger = `${f.dir}/trigger`;
      const count = 4000;
      const p = make("workers")
        .from(
          ref(
            "src",
            { count, perPull: 50, delayMs: 3, nearAt: count - 1500, nearFile: near },
            "source",
          ),
          { name: "src", fuse: false, permissions: f.perms },
        )
        .keyBy()
        .via(ref("sum", { pass: true }), { name: "sum", parallelism: 2, fuse: false })
        .to(
          ref("sink", {
            out,
            fault: { at: "batch", id: 0, waitFor: trigger, how: "timer", marker: f.marker },
          }, "sink"),
          { name: "out", fuse: false, permissions: f.perms },
        );
      const running = p.run();
      running.catch(() => {});
      await until(() => exists(near), 10_000, "the source near its end");
      Deno.writeTextFileSync(trigger, "x");
      const scaled = await settles(
        p.scale("sum", 3).then(() => "scaled", (e: Error) => e),
        10_000,
        "scale()",
      );
      if (scaled instanceof Error) assert.match(scaled.message, /finishing/);
      const s = await settles(running, 15_000, "run()");
      assert.ok(exists(`${f.marker}.1`), "the sink died");
      await assertIds(out, count, false);
      await assertSums(out, count, true);
      for (const c of codes(s)) assert.equal(c, "out E_WORKER");
    } finally {
      await Deno.remove(f.dir, { recursive: true });
    }
  },
});

// ---------------------------------------------------------------------------------------------
// 12. Fused with the source: a keyed sum failing twice in a row, or while stop() drains; a fused
//     stage escalating under its own options.

for (const mode of modes) {
  Deno.test({
    name:
      `${mode}: fused source → keyed sum → sink, the sum fails twice in a row, the second time as it resumes: exact sums, each key once`,
    ...loose,
    fn: async () => {
      const f = await faultFiles("sluice-r9-");
      try {
        const out = `${f.dir}/out`, log = `${f.dir}/src`, count = 3000;
        const s = await resolves(
          make(mode)
            .from(ref("src", { count, perPull: 50, delayMs: 1, log }, "source"), {
              name: "src",
              permissions: f.perms,
            })
            .keyBy()
            .via(ref("sum", { fault: { at: "batch", id: 1500, times: 2, marker: f.marker } }), {
              name: "sum",
              permissions: f.perms,
            })
            .to(ref("sink", { out }, "sink"), { name: "out", permissions: f.perms }),
        );
        await assertSums(out, count, true);
        assert.deepEqual(codes(s), ["sum Error", "sum Error"]);
        // Each replacement resumed where the restored state ends, not from the start.
        const opens = (await lines(log)).filter((l) => l.startsWith("open"));
        assert.equal(opens.length, 3);
      } finally {
        await Deno.remove(f.dir, { recursive: true });
      }
    },
  });

  Deno.test({
    name:
      `${mode}: stop() while a keyed sum fused with its source fails in flush(): the sums hold exactly what the source committed`,
    ...loose,
    fn: async () => {
      const f = await faultFiles("sluice-r9-");
      try {
        const out = `${f.dir}/out`, log = `${f.dir}/src`;
        const p = make(mode)
          .from(ref("src", { perPull: 20, delayMs: 3, log }, "source"), {
            name: "src",
            permissions: f.perms,
          })
          .keyBy()
          .via(ref("sum", { fault: { at: "flush", marker: f.marker } }), {
            name: "sum",
            permissions: f.perms,
          })
          .to(ref("sink", { out }, "sink"), { name: "out", fuse: false, permissions: f.perms });
        const running = p.run();
        const outcome = running.then((s) => s, (e: Error) => e);
        await until(
          () => exists(log) && (Deno.readTextFileSync(log).match(/ack/g)?.length ?? 0) > 3,
          10_000,
          "acks",
        );
        await settles(p.stop(), 3000 + 2000, "stop()");
        const s = await settles(outcome, 5000, "run()");
        if (s instanceof Error) assert.fail(`run() rejected: ${s.message}`);
        assert.ok(exists(`${f.marker}.1`), "sum failed");
        assert.deepEqual(codes(s), ["sum Error"]);
        const committed = Math.max(
          ...(await lines(log)).filter((l) => l.startsWith("ack")).map((l) => Number(l.slice(4))),
        );
        await assertSums(out, committed, true);
      } finally {
        await Deno.remove(f.dir, { recursive: true });
      }
    },
  });

  Deno.test({
    name:
      `${mode}: fused source → pass-through → sink, the pass-through's flush() always fails: escalates under its own maxRestarts, named`,
    ...loose,
    fn: async () => {
      const f = await faultFiles("sluice-r9-");
      try {
        const out = `${f.dir}/out`;
        const got = await ends(
          make(mode)
            .from(ref("src", { count: COUNT, perPull: 100 }, "source"), {
              name: "src",
              maxRestarts: 5,
            })
            .via(ref("hop", { fault: { at: "flush", always: true, marker: f.marker } }), {
              name: "hop",
              maxRestarts: 1,
              permissions: f.perms,
            })
            .to(ref("sink", { out }, "sink"), { name: "out", permissions: f.perms }),
        );
        assert.ok(got instanceof Error, "run() resolved");
        assert.equal(got.name, "PipelineError");
        assert.match(got.message, /stage "hop" instance 0 failed 2 times within 10000 ms/);
      } finally {
        await Deno.remove(f.dir, { recursive: true });
      }
    },
  });
}
