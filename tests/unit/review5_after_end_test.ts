// Fifth review, by tests, of fcd54e4: an instance that fails once everything below it finished
// ("spent") is not restarted and its upstream drops what it keeps for it; a replacement never feeds
// finished instances; stop() bounds close() hooks by its own deadline; startTimeoutMs inline.
// Tests marked "(was a bug)" failed on the code as reviewed (5a3e333); each says what is expected.
import assert from "node:assert/strict";
import { pipeline, type RunSummary } from "../../mod.ts";
import { fixtureRef } from "./_fixture_ref.ts";
import { expectedSums, faultFiles } from "./_paced.ts";
import { until, within } from "./_wait.ts";

const ref = fixtureRef(new URL("./fixtures/review5_after_end_stages.ts", import.meta.url));
const modes = ["inline", "workers"] as const;
const COUNT = 2000;
/** Runs that hang, slow close() hooks and dead workers leave timers and ports behind them. */
const loose = { sanitizeOps: false, sanitizeResources: false };

async function lines(path: string): Promise<string[]> {
  return (await Deno.readTextFile(path).catch(() => "")).split("\n").filter(Boolean);
}

/** The ids a `jsonSink` wrote, in order. */
async function idsIn(path: string): Promise<number[]> {
  return (await lines(path)).map((l) => (JSON.parse(l) as { id: number }).id);
}

/** Asserts that ids 0..count-1 were each written exactly once. */
async function assertOnceEach(path: string, count: number): Promise<void> {
  const ids = await idsIn(path);
  const seen = new Set(ids);
  const missing = Array.from({ length: count }, (_, i) => i).filter((i) => !seen.has(i));
  assert.deepEqual(missing.slice(0, 10), [], `${missing.length} ids missing`);
  assert.equal(ids.length, count, `${ids.length - count} ids written twice`);
}

/** The `{ key, sum }` lines a `jsonSink` wrote, each key once (asserted). */
async function sumsIn(path: string): Promise<Record<string, number>> {
  const got: Record<string, number> = {};
  for (const l of await lines(path)) {
    const v = JSON.parse(l) as { key: string; sum: number };
    assert.ok(!(v.key in got), `key ${v.key} emitted twice (${got[v.key]} and ${v.sum})`);
    got[v.key] = v.sum;
  }
  return got;
}

/** Runs `p` for at most `ms`: a hang fails the test (the run is stopped, forced, first). */
async function ends(p: ReturnType<typeof pipeline>, ms = 10_000): Promise<RunSummary> {
  const running = p.run();
  running.catch(() => {});
  const got = await within(running, ms);
  if (got === "timed out") {
    await p.stop().catch(() => {});
    await running.catch(() => {});
    assert.fail(`the run did not end within ${ms} ms`);
  }
  return got;
}

const codes = (s: RunSummary) => s.failures.map((f) => `${f.stage} ${f.code}`).sort();

// ---------------------------------------------------------------------------------------------
// 1. Spent instances.

for (const mode of modes) {
  // Expected: the sink has written every record and its input has ended when the source's last
  // ack throws; it is only still in its close() (800 ms, well within closeTimeoutMs). The source
  // had passed everything on, as in after_end_test.ts: the run should end, each id once, the
  // failure in the summary. What happens: #spent() asks for every instance below to be `done`,
  // and the sink is not yet (its close() runs), so the source is restarted; the replacement is
  // wired to the sink (Runtime.#spawn: not `done`, so not in RouteSpec.finished), whose task has
  // finished its loop and never reads the new channel: the replacement re-reads the source, runs
  // out of credit and waits forever. The run hangs (until stop(), which is then forced).
  Deno.test({
    name:
      `${mode}: the source's last ack fails while the sink is still in its close(): the run ends, each id once (was a bug)`,
    ...loose,
    fn: async () => {
      const f = await faultFiles("sluice-r5-");
      try {
        const log = `${f.dir}/source`, out = `${f.dir}/out`;
        const summary = await ends(
          pipeline({ mode, signals: false, stopTimeoutMs: 1500, name: "r5-slow-close" })
            .from(
              ref("lastAckSource", { count: COUNT, perPull: 100, log, marker: f.marker }, "source"),
              { name: "src", fuse: false, permissions: f.perms },
            )
            .to(ref("jsonSink", { out, closeDelayMs: 800 }, "sink"), {
              name: "out",
              fuse: false,
              permissions: f.perms,
            }),
          5000,
        );
        await assertOnceEach(out, COUNT);
        assert.deepEqual(codes(summary), ["src Error"]);
        assert.equal((await lines(log)).filter((l) => l.startsWith("open")).length, 1);
      } finally {
        await Deno.remove(f.dir, { recursive: true });
      }
    },
  });
}

// Expected: mid#0 finished (done, its sink done) and then its worker died: it is spent, not
// restarted, and the source was told to drop it (dropOut). Later the source's last ack fails once
// every mid instance has had everything: the source is spent as well (every instance below it
// had everything), so the run should end with both failures reported and each id written once.
// What happens: #spent(src) requires each instance below to be `done && !dead`; mid#0 is dead
// (spent, never to be replaced), so the source is restarted. Its replacement gets no channel to
// mid#0 and mid#0 is not in RouteSpec.finished (Runtime.#spawn only looks at live instances), so
// OutEdge.#sender() throws "Cannot route record: no channel to instance 0" on the first record
// hashed there; every replacement fails the same way until maxRestarts: run() rejects.
Deno.test({
  name:
    "workers: a spent pass-through, then its source's last ack fails: the run ends instead of rejecting (was a bug)",
  ...loose,
  fn: async () => {
    const f = await faultFiles("sluice-r5-");
    try {
      const log = `${f.dir}/source`, out = `${f.dir}/out`;
      const p = pipeline({ mode: "workers", signals: false, stopTimeoutMs: 3000, name: "r5-mid" })
        .from(
          ref("lastAckSource", {
            count: COUNT,
            perPull: 100,
            log,
            marker: `${f.marker}-src`,
            ackDelayMs: 1500,
          }, "source"),
          { name: "src", fuse: false, permissions: f.perms },
        )
        .keyBy()
        .via(ref("pass", { marker: `${f.marker}-mid`, dieAfterEndMs: 500, instance: 0 }), {
          name: "mid",
          parallelism: 2,
          fuse: false,
          permissions: f.perms,
        })
        .to(ref("jsonSink", { out, slowInstance: 1, delayMs: 100 }, "sink"), {
          name: "out",
          parallelism: 2,
          fuse: false,
          permissions: f.perms,
        });
      const running = p.run();
      running.catch(() => {});
      const got = await within(running.then((s) => s, (e: Error) => e), 10_000);
      if (got === "timed out") {
        await p.stop().catch(() => {});
        assert.fail("the run did not end within 10 s");
      }
      if (got instanceof Error) assert.fail(`run() rejected: ${got.message}`);
      await assertOnceEach(out, COUNT);
      assert.deepEqual(codes(got), ["mid E_WORKER", "src Error"]);
      assert.equal((await lines(log)).filter((l) => l.startsWith("open")).length, 1);
    } finally {
      await Deno.remove(f.dir, { recursive: true });
    }
  },
});

for (const mode of modes) {
  Deno.test({
    name:
      `${mode}: the source's last ack fails above a keyed stateful sum: exact sums, run ends, counted`,
    ...loose,
    fn: async () => {
      const f = await faultFiles("sluice-r5-");
      try {
        const log = `${f.dir}/source`, out = `${f.dir}/out`;
        const summary = await ends(
          pipeline({ mode, signals: false, stopTimeoutMs: 3000, checkpointMs: 100 })
            .from(
              // The failing ack waits 200 ms: the instances below are done by then (the first test
              // above is about when they are not).
              ref("lastAckSource", {
                count: COUNT,
                perPull: 100,
                log,
                marker: f.marker,
                ackDelayMs: 200,
              }, "source"),
              { name: "src", fuse: false, permissions: f.perms },
            )
            .keyBy()
            .via(ref("keyedSum", {}), { name: "sum", parallelism: 2, fuse: false })
            .to(ref("jsonSink", { out }, "sink"), {
              name: "out",
              fuse: false,
              permissions: f.perms,
            }),
        );
        assert.deepEqual(await sumsIn(out), expectedSums(COUNT, 20));
        assert.deepEqual(codes(summary), ["src Error"]);
        assert.equal((await lines(log)).filter((l) => l.startsWith("open")).length, 1);
        // The spent source is never replaced: what it counted comes with its failure.
        assert.equal(summary.stages.src?.out, COUNT);
        assert.equal(summary.stages.sum?.in, COUNT);
      } finally {
        await Deno.remove(f.dir, { recursive: true });
      }
    },
  });

  Deno.test({
    name:
      `${mode}: one_for_all sources at parallelism 2, one spent: the other is not restarted, each id once`,
    ...loose,
    fn: async () => {
      const f = await faultFiles("sluice-r5-");
      try {
        const log = `${f.dir}/source`, out = `${f.dir}/out`;
        const summary = await ends(
          pipeline({ mode, signals: false, stopTimeoutMs: 3000 })
            .from(
              ref("lastAckSource", {
                count: COUNT,
                perPull: 100,
                log,
                marker: f.marker,
                failInstance: 0,
                // Late enough that sink#0 is done: then src#0 is spent for sure (the first test
                // above is about when it is not).
                ackDelayMs: 300,
              }, "source"),
              {
                name: "src",
                parallelism: 2,
                fuse: false,
                strategy: "one_for_all",
                permissions: f.perms,
              },
            )
            .to(ref("jsonSink", { out, slowInstance: 1, delayMs: 30 }, "sink"), {
              name: "out",
              parallelism: 2,
              fuse: false,
              permissions: f.perms,
            }),
        );
        await assertOnceEach(out, 2 * COUNT);
        assert.deepEqual(codes(summary), ["src Error"]);
        assert.equal(summary.stages.src?.restarts, 0);
        assert.deepEqual((await lines(log)).sort(), ["open 0", "open 1"]);
      } finally {
        await Deno.remove(f.dir, { recursive: true });
      }
    },
  });
}

// Failed on fcd54e4 (sum#0 was restarted from its final checkpoint and emitted its sums again);
// passes since 5a3e333 (an instance that fails once done is not restarted).
Deno.test({
  name:
    "workers: a keyed sum instance that dies after it is done is not restarted: no key emitted twice",
  ...loose,
  fn: async () => {
    const f = await faultFiles("sluice-r5-");
    try {
      const out = `${f.dir}/out`;
      const summary = await ends(
        pipeline({ mode: "workers", signals: false, stopTimeoutMs: 3000, checkpointMs: 100 })
          .from(ref("lastAckSource", { count: COUNT, perPull: 100 }, "source"), {
            name: "src",
            fuse: false,
          })
          .keyBy()
          // sum#0 dies 300 ms after its close() (by then it is done: it passed everything on;
          // 500 ms after its flush was once too early on a loaded CI host, and it was restarted);
          // sum#1 flushes 1.5 s late, so the sink below is still running.
          .via(
            ref("keyedSum", {
              instance: 0,
              dieAfterEndMs: 300,
              marker: f.marker,
              slowInstance: 1,
              flushDelayMs: 1500,
            }),
            { name: "sum", parallelism: 2, permissions: f.perms },
          )
          .to(ref("jsonSink", { out }, "sink"), { name: "out", fuse: false, permissions: f.perms }),
      );
      assert.deepEqual(await sumsIn(out), expectedSums(COUNT, 20));
      assert.deepEqual(codes(summary), ["sum E_WORKER"]);
      assert.equal(summary.stages.sum?.restarts, 0);
    } finally {
      await Deno.remove(f.dir, { recursive: true });
    }
  },
});

Deno.test({
  name:
    "workers: round edge, a pass-through dies after its end while a sink still writes: every id delivered, the run ends",
  ...loose,
  fn: async () => {
    const f = await faultFiles("sluice-r5-");
    try {
      const out = `${f.dir}/out`;
      const summary = await ends(
        pipeline({ mode: "workers", signals: false, stopTimeoutMs: 3000 })
          .from(ref("lastAckSource", { count: COUNT, perPull: 100 }, "source"), {
            name: "src",
            fuse: false,
          })
          .via(ref("pass", { marker: f.marker, dieAfterEndMs: 100 }), {
            name: "mid",
            fuse: false,
            permissions: f.perms,
          })
          .to(ref("jsonSink", { out, slowInstance: 1, delayMs: 100 }, "sink"), {
            name: "out",
            parallelism: 2,
            fuse: false,
            permissions: f.perms,
          }),
      );
      // The replacement replays to the slow sink only (at-least-once: repeats allowed).
      const ids = new Set(await idsIn(out));
      assert.equal(ids.size, COUNT);
      assert.deepEqual(codes(summary), ["mid E_WORKER"]);
    } finally {
      await Deno.remove(f.dir, { recursive: true });
    }
  },
});

// ---------------------------------------------------------------------------------------------
// 2. stop() and close(), startTimeoutMs inline.

for (const mode of modes) {
  // Expected (the commit, and the README: "close() hooks are bounded by ... what is left of its
  // time"): stop() ends within stopTimeoutMs (+ a little), as in stop_close_test.ts. What happens:
  // in a fused task Task.#close() runs the hooks one after another and gives up at the stop's
  // deadline on the one running (b, reported E_CLOSE_TIMEOUT); the stages after it (out) are only
  // closed when the task is ended, by Task.#release() bounded by CLOSE_TIMEOUT_MS (1 s), not by the
  // stop's deadline, and Runtime.#stop() awaits #finished, which waits for that close: stop()
  // takes ~1.65 s with stopTimeoutMs 1000 (up to stopTimeoutMs + 1 s, or + KILL_GRACE_MS).
  Deno.test({
    name:
      `${mode}: stop() with a fused chain whose close() hooks together outlast the stop's time: stop() keeps to stopTimeoutMs (was a bug)`,
    ...loose,
    fn: async () => {
      const f = await faultFiles("sluice-r5-");
      try {
        const out = `${f.dir}/out`, trace = `${f.dir}/trace`;
        const stopTimeoutMs = 1000;
        const p = pipeline({ mode, signals: false, stopTimeoutMs, name: "r5-fused-close" })
          .from(ref("lastAckSource", { perPull: 10, delayMs: 5 }, "source"), { name: "src" })
          .via(ref("pass", { closeDelayMs: 700, trace }), { name: "a", permissions: f.perms })
          .via(ref("pass", { closeDelayMs: 700, trace }), { name: "b", permissions: f.perms })
          .to(ref("jsonSink", { out, closeDelayMs: 700, trace }, "sink"), {
            name: "out",
            permissions: f.perms,
          });
        const running = p.run();
        running.catch(() => {});
        await until(
          () => {
            try {
              return Deno.statSync(out).size > 0;
            } catch {
              return false;
            }
          },
          5000,
          "the first write",
        );
        const asked = Date.now();
        await p.stop();
        const took = Date.now() - asked;
        const summary = await within(running, 5000);
        assert.notEqual(summary, "timed out");
        if (summary === "timed out") return;
        assert.ok(codes(summary).includes("b E_CLOSE_TIMEOUT"), JSON.stringify(codes(summary)));
        assert.ok(took < stopTimeoutMs + 300, `stop() took ${took} ms`);
      } finally {
        await Deno.remove(f.dir, { recursive: true });
      }
    },
  });

  Deno.test({
    name:
      `${mode}: stop() with a slow close() in each of three tasks: each bounded by the stop's time, not forced`,
    ...loose,
    fn: async () => {
      const f = await faultFiles("sluice-r5-");
      try {
        const out = `${f.dir}/out`, trace = `${f.dir}/trace`;
        const stopTimeoutMs = 1000;
        const p = pipeline({ mode, signals: false, stopTimeoutMs, name: "r5-close" })
          .from(ref("lastAckSource", { perPull: 10, delayMs: 5 }, "source"), {
            name: "src",
            fuse: false,
          })
          .via(ref("pass", { closeDelayMs: 5000, trace }), {
            name: "a",
            fuse: false,
            permissions: f.perms,
          })
          .via(ref("pass", { closeDelayMs: 5000, trace }), {
            name: "b",
            fuse: false,
            permissions: f.perms,
          })
          .to(ref("jsonSink", { out, closeDelayMs: 5000, trace }, "sink"), {
            name: "out",
            fuse: false,
            permissions: f.perms,
          });
        const running = p.run();
        running.catch(() => {});
        // Stopped once the sink has written something (four workers start slower on a loaded
        // machine than a fixed pause allows).
        await until(
          () => {
            try {
              return Deno.statSync(out).size > 0;
            } catch {
              return false;
            }
          },
          10_000,
          "the sink's first write",
        );
        const asked = Date.now();
        await p.stop();
        const took = Date.now() - asked;
        const summary = await within(running, 5000);
        assert.notEqual(summary, "timed out");
        if (summary === "timed out") return;
        assert.deepEqual(codes(summary), [
          "a E_CLOSE_TIMEOUT",
          "b E_CLOSE_TIMEOUT",
          "out E_CLOSE_TIMEOUT",
        ]);
        for (const x of summary.failures) assert.match(x.message, /the stop's time is up/);
        assert.ok(took < stopTimeoutMs + 300, `stop() took ${took} ms`);
        // What the source emitted was drained: no gap in what the sink wrote.
        const ids = await idsIn(out);
        assert.ok(ids.length > 0);
        assert.equal(new Set(ids).size, Math.max(...ids) + 1);
      } finally {
        await Deno.remove(f.dir, { recursive: true });
      }
    },
  });

  Deno.test({
    name:
      `${mode}: stop() while a failed pass-through restarts: the drain completes, no gap, not forced`,
    ...loose,
    fn: async () => {
      const f = await faultFiles("sluice-r5-");
      try {
        const out = `${f.dir}/out`;
        const p = pipeline({ mode, signals: false, stopTimeoutMs: 3000, name: "r5-stop-restart" })
          .from(ref("lastAckSource", { perPull: 10, delayMs: 2 }, "source"), {
            name: "src",
            fuse: false,
          })
          // Its old incarnation's close() takes 300 ms: the restart waits for it.
          .via(ref("pass", { failAt: 200, marker: f.marker, closeDelayMs: 300 }), {
            name: "mid",
            fuse: false,
            permissions: f.perms,
          })
          .to(ref("jsonSink", { out }, "sink"), { name: "out", fuse: false, permissions: f.perms });
        const running = p.run();
        running.catch(() => {});
        await until(
          () => {
            try {
              Deno.statSync(f.marker);
              return true;
            } catch {
              return false;
            }
          },
          5000,
          "the failure",
        );
        await p.stop();
        const summary = await within(running, 5000);
        assert.notEqual(summary, "timed out");
        if (summary === "timed out") return;
        assert.deepEqual(codes(summary), ["mid Error"]);
        const ids = await idsIn(out);
        assert.ok(Math.max(...ids) >= 200, "the records after the failure were delivered");
        assert.equal(new Set(ids).size, Math.max(...ids) + 1, "a gap in the ids written");
      } finally {
        await Deno.remove(f.dir, { recursive: true });
      }
    },
  });

  Deno.test({
    name:
      `${mode}: a keyed sink instance whose open() never resolves is replaced after startTimeoutMs: each id once`,
    ...loose,
    fn: async () => {
      const f = await faultFiles("sluice-r5-");
      try {
        const out = `${f.dir}/out`;
        const summary = await ends(
          pipeline({ mode, signals: false, stopTimeoutMs: 3000, startTimeoutMs: 400 })
            .from(ref("lastAckSource", { count: COUNT, perPull: 100 }, "source"), { name: "src" })
            .keyBy()
            .to(ref("jsonSink", { out, openHangMarker: f.marker }, "sink"), {
              name: "out",
              parallelism: 2,
              permissions: f.perms,
            }),
        );
        await assertOnceEach(out, COUNT);
        assert.equal(summary.failures.length, 1);
        assert.match(codes(summary)[0]!, /^out E_START$/);
        assert.equal(summary.stages.out?.restarts, 1);
      } finally {
        await Deno.remove(f.dir, { recursive: true });
      }
    },
  });
}
