// Twelfth review, by tests: failures during and right around `pipeline.scale(stage, n)` of a keyed
// stateful stage. Pipeline: source → stateless hop (fuse: false) → keyBy → keyed sum (2 or 3
// instances) → sink. While scale() runs, checkpoints are taken per stateful instance (not
// aligned); the README admitted "a failure then can count replayed input again". These tests find
// out when that gives wrong keyed results: a failure of the source did (see "was a bug" below);
// the rescale's pause now begins with an aligned checkpoint that stops the routing into the stage.
//
// Faults are ordered by files (fixtures/review12_stages.ts): a new sum instance opening (2→3) or a
// sum instance retiring (3→1) means the rescale is under way; the hop, the source or a sum
// instance fails once that file exists. "After" scenarios create the trigger right after scale()
// resolved, before the next aligned checkpoint is stored (checkpointMs 100).
//
// Expected everywhere: each key's final written once, with the exact sum and count of ids
// 0..count-1 (no loss, no double count), scale() and run() settle within bounds, the failure is in
// RunSummary.failures. `R12_REPEAT=n` runs each scenario n times and prints how often it failed.
import assert from "node:assert/strict";
import { fixtureRef } from "./_fixture_ref.ts";
import { codeOf, codes, hows, lines, make, outputs } from "./_runs.ts";
import { expectedSums, faultFiles } from "./_paced.ts";
import { settles, sleep, until } from "./_wait.ts";
import { exists } from "./fixtures/_once.ts";
import type { RunSummary } from "../../mod.ts";

const r9 = fixtureRef(new URL("./fixtures/review9_stages.ts", import.meta.url));
const r12 = fixtureRef(new URL("./fixtures/review12_stages.ts", import.meta.url));
const modes = ["inline", "workers"] as const;
type Mode = (typeof modes)[number];
type How = "throw" | "timer";
const loose = { sanitizeOps: false, sanitizeResources: false };
const KEYS = 20;
const COUNT = 3000;
const REPEAT = Number(Deno.env.get("R12_REPEAT") ?? "1");

/** Per-key counts of ids 0..count-1. */
function expectedCounts(count: number): Record<string, number> {
  const c: Record<string, number> = {};
  for (let i = 0; i < count; i++) c[`k${i % KEYS}`] = (c[`k${i % KEYS}`] ?? 0) + 1;
  return c;
}

/**
 * What is wrong with the finals written to `path` (null: each key once, exact sum and count).
 * Reports keys written twice, missing keys, and the records counted twice or lost over all keys.
 */
async function verdict(path: string, count: number): Promise<string | null> {
  const finals = (await outputs(path)).filter((o) => o.final);
  const sums = expectedSums(count, KEYS), counts = expectedCounts(count);
  const got = new Map<string, { sum: number; count: number }>();
  const twice: string[] = [];
  for (const f of finals) {
    if (got.has(f.key!)) twice.push(f.key!);
    else got.set(f.key!, { sum: f.sum!, count: f.count! });
  }
  let extra = 0, lost = 0;
  const wrong: string[] = [];
  for (const k of Object.keys(sums)) {
    const g = got.get(k);
    if (!g) {
      wrong.push(`${k} missing`);
      lost += counts[k]!;
      continue;
    }
    if (g.count > counts[k]!) extra += g.count - counts[k]!;
    if (g.count < counts[k]!) lost += counts[k]! - g.count;
    if (g.sum !== sums[k] || g.count !== counts[k]) {
      wrong.push(`${k} sum ${g.sum}/${sums[k]} count ${g.count}/${counts[k]}`);
    }
  }
  if (twice.length === 0 && wrong.length === 0) return null;
  return `${extra} records counted twice, ${lost} lost; keys written twice: [${twice}]; ` +
    `wrong: ${wrong.slice(0, 4).join(", ")}${wrong.length > 4 ? ` (+${wrong.length - 4})` : ""}`;
}

type Who = "hop" | "sum" | "src";
type Scenario = {
  mode: Mode;
  /** Which stage fails. */
  who: Who;
  how: How;
  /**
   * As scale() is called (its pause under way; a trigger the test creates right before the
   * call), during the rescale (a trigger the stages create: a new sum instance opening, an old
   * one retiring), right after scale() resolved, 250 ms after
   * it (aligned checkpoints stored since), or with no rescale at all (controls).
   */
  when: "start" | "during" | "after" | "late" | "noscale";
  from: number;
  to: number;
  /** The hop's parallelism and strategy (one_for_all). */
  hops?: number;
  strategy?: "one_for_one" | "one_for_all";
  /** The sum fails from snapshot() (the move's snapshot), else from onTick(). */
  sumAt?: "tick" | "snapshot";
};

type Result = {
  verdict: string | null;
  summary: RunSummary;
  scaled: "scaled" | Error;
  failed: boolean;
  /** The fault had fired when scale() resolved. */
  early: boolean;
  /** How long after its trigger file was made the fault fired (ms, by the files' mtimes). */
  afterTriggerMs: number;
  opens: string[];
  ms: number;
};

/**
 * The paced source of these tests: `count` ids (default COUNT), 20 a pull every 4 ms, creating
 * `nearFile` at id 800.
 */
function source(
  o: { count?: number; log?: string; nearFile?: string; fault?: unknown } = {},
) {
  return r12("src", {
    count: o.count ?? COUNT,
    perPull: 20,
    delayMs: 4,
    keys: KEYS,
    log: o.log,
    nearAt: 800,
    nearFile: o.nearFile,
    fault: o.fault,
  }, "source");
}

/** Runs one scenario: the run must end and scale() settle (else the test fails: a hang). */
async function runScenario(s: Scenario): Promise<Result> {
  const f = await faultFiles("sluice-r12-");
  try {
    const out = `${f.dir}/out`, near = `${f.dir}/near`, srcLog = `${f.dir}/src`;
    // Late: the source must still be running 250 ms after the rescale.
    const count = s.when === "late" ? 2 * COUNT : COUNT;
    const announce = `${f.dir}/announce`, retired = `${f.dir}/retired`, arm = `${f.dir}/arm`;
    const trigger = s.when === "start"
      ? arm
      : s.when !== "during"
      ? f.trigger
      : s.to > s.from
      ? announce
      : retired;
    const failedFile = `${f.dir}/failed`;
    const fault = { trigger, marker: f.marker, how: s.how, failedFile };
    const hopFault = s.who === "hop" ? { ...fault, instance: 0 } : undefined;
    const sumFault = s.who === "sum" ? { ...fault, instance: 0, at: s.sumAt } : undefined;
    const srcFault = s.who === "src" ? fault : undefined;
    const p = make(s.mode)
      .from(
        source({ count, log: srcLog, nearFile: near, fault: srcFault }),
        { name: "src", fuse: false, permissions: f.perms },
      )
      .via(
        // During the rescale the hop throws from the batch it holds once `arm` exists (inline its
        // loop waits on the paused output: no hook runs otherwise).
        r12("hop", { fault: hopFault, arm: s.when === "during" ? arm : undefined }),
        {
          name: "hop",
          fuse: false,
          parallelism: s.hops ?? 1,
          strategy: s.strategy,
          capacity: 64,
          permissions: f.perms,
        },
      )
      .keyBy()
      .via(
        r12("sum", {
          fault: sumFault,
          announce,
          announceFrom: s.from,
          retired,
          openDelayMs: 150,
          retireDelayMs: 150,
        }),
        {
          name: "sum",
          fuse: false,
          parallelism: s.from,
          tickMs: 1,
          permissions: f.perms,
        },
      )
      .to(r9("sink", { out }, "sink"), { name: "out", fuse: false, permissions: f.perms });
    const t0 = Date.now();
    const running = p.run();
    running.catch(() => {});
    try {
      await until(() => exists(near), 5000, "the source at id 800");
      if (s.when === "during" || s.when === "start") Deno.writeTextFileSync(arm, "x");
      // A hang detector: the hop's armed batch may wait up to 3 s for the trigger, which the
      // paused rescale may not create meanwhile: ~4 s is usual for the hop's scenarios, 7 s was
      // seen on a quiet host, and 8 s left a loaded one too little.
      const scaled = s.when === "noscale" ? "scaled" : await settles(
        p.scale("sum", s.to).then(() => "scaled" as const, (e: Error) => e),
        15_000,
        `scale(sum, ${s.to})`,
      );
      const early = exists(failedFile);
      if (s.when === "late") await sleep(250);
      if (s.when !== "during") Deno.writeTextFileSync(f.trigger, "x");
      const summary = await settles(running, 12_000, "run()");
      return {
        verdict: await verdict(out, count),
        summary,
        scaled,
        failed: exists(failedFile),
        early,
        afterTriggerMs: exists(failedFile) && exists(trigger)
          ? mtime(failedFile) - mtime(trigger)
          : NaN,
        opens: await lines(srcLog),
        ms: Date.now() - t0,
      };
    } finally {
      await settles(p.stop().catch(() => {}), 5000, "stop()").catch(() => {});
    }
  } finally {
    await Deno.remove(f.dir, { recursive: true }).catch(() => {});
  }
}

/** When `path` was last written, ms since the epoch. */
function mtime(path: string): number {
  return Deno.statSync(path).mtime?.getTime() ?? NaN;
}

/** Runs `s` REPEAT times (1 by default); asserts every run (after printing the tally). */
async function check(s: Scenario): Promise<void> {
  const results: (Result | Error)[] = [];
  for (let i = 0; i < REPEAT; i++) results.push(await runScenario(s).catch((e: Error) => e));
  if (REPEAT > 1) {
    const bad = results.filter((r) => r instanceof Error || r.verdict !== null || !r.failed);
    console.log(
      `  ${bad.length}/${REPEAT} wrong: ` +
        results.map((r) =>
          r instanceof Error
            ? `ERR ${r.message}`
            : `${r.verdict ?? "ok"}${r.failed ? "" : " (no fault)"}${
              r.early ? " (failed before scale() resolved)" : ""
            } [${r.opens.join("; ")}] ${r.ms}ms`
        ).join(" | "),
    );
  }
  for (const r of results) {
    if (r instanceof Error) throw r;
    assert.ok(r.failed, "the fault fired");
    const inside = s.when === "during" || s.when === "start";
    if (s.when === "during" && tickHeld(s)) {
      // Its trigger is made by a sum instance whose open() (2→3) or close() (3→1) then takes
      // 150 ms, which the rescale waits for. (Not `early`: ticks resume just before scale()
      // resolves, and a loaded main thread may see the fault before its own continuation.)
      assert.ok(
        r.afterTriggerMs >= 140,
        `the sum's onTick was held until the rescale ended (fired ${r.afterTriggerMs} ms after ` +
          `its trigger)`,
      );
    } else if (!(s.when === "start" && tickHeld(s))) {
      assert.equal(r.early, inside, "the fault fired before scale() resolved");
    }
    assert.equal(r.scaled, "scaled", `scale() resolved (${r.scaled})`);
    assert.equal(r.verdict, null, `per-key finals exact (source opens: ${r.opens.join("; ")})`);
    const stage = s.who === "src" ? "src" : s.who;
    assert.ok(
      codes(r.summary).includes(`${stage} ${codeOf(s.how)}`),
      `failure reported: ${codes(r.summary)}`,
    );
  }
}

/**
 * The sum fails from onTick(): during a rescale the rescaled stage's ticks are held (from the
 * pause's snapshot until scale() is over), so a trigger that appears then fires after it; one that
 * appears as scale() is called fires before or after, as the pause's snapshot comes.
 */
const tickHeld = (s: Scenario) =>
  s.who === "sum" && s.how === "throw" && (s.sumAt ?? "tick") === "tick";

const WHEN = {
  start: "as scale() is called (during its pause)",
  during: "during the rescale",
  after: "right after scale() resolved",
  late: "250 ms after scale() resolved",
  noscale: "",
};
const name = (s: Scenario) =>
  s.when === "noscale"
    ? `${s.mode}: control: no scale(), the ${s.who} fails (${s.how}) mid-stream: exact per-key sums`
    : `${s.mode}: scale(sum ${s.from}→${s.to}), the ${s.who}${
      s.hops ? ` (${s.hops} instances, ${s.strategy})` : ""
    } fails (${s.how}${s.sumAt === "snapshot" ? " from snapshot()" : ""}) ${WHEN[s.when]}${
      s.when === "during" && tickHeld(s) ? " (from onTick, held until the rescale ends)" : ""
    }: ` +
      `exact per-key sums, each key once, scale() and run() settle`;

/**
 * Was a bug: the source (seekable, above the stateful stage) failed while a rescale's per-instance
 * checkpoints were the newest stored state: during the rescale once its pause was over, or right
 * after scale() resolved, before the next aligned checkpoint was stored.
 *
 * Expected: exact per-key sums and counts (3000 records over 20 keys, each key once), as when the
 * source fails with no rescale or 250 ms after one (the controls: 0 wrong of 10 runs each, in both
 * modes), and as when it fails as scale() is called, during the pause (0 of 10 each).
 * Happened (dfc255e): no key lost, none written twice, but every key's count and sum too high:
 * whole source pulls (20 records) counted twice, 20 to 400 records in all. Runs wrong, of 10 each
 * (R12_REPEAT=10): during 2→3 inline 10, workers 10 (throw) and 10 (timer); during 3→1 inline 7,
 * workers 10 (throw) and 9 (timer); right after 2→3 inline 5, workers 10 (throw) and 9 (timer).
 * The source's replacement opened at `resumeFrom` 400..760 (the place of the last aligned
 * checkpoint before the rescale) while the rescale was called at id ~800, and the excess was that
 * gap: e.g. workers, resumeFrom 660, 120 records twice; inline, resumeFrom 400, 380 twice.
 *
 * Cause: during scale() checkpoints were taken per stateful instance (`Runtime.#checkpointAlone`),
 * and the rescale's pause waited until everything sent to the stage was held by one: the sum's
 * stored state then held input past the place of the source, which only aligned checkpoints store.
 * Fix: the pause begins with an aligned checkpoint whose barriers stop the routing into the stage
 * right behind them (`Runtime.#pauseAtBarrier`): the state the rescale moves, and any restored
 * during or after it, ends where the sources' places in that checkpoint do.
 */
const fixed = (s: Scenario) => s.who === "src" && (s.when === "during" || s.when === "after");

/** A test per scenario. */
function test(s: Scenario): void {
  Deno.test({
    name: name(s) + (fixed(s) ? " (was a bug)" : ""),
    ...loose,
    fn: () => check(s),
  });
}

// ---------------------------------------------------------------------------------------------
// 1–3. The stateless hop above the sum, a sum instance or the source fails while scale() is
//      under way.

for (const who of ["hop", "sum", "src"] as const) {
  for (const mode of modes) {
    for (const how of hows(mode)) {
      for (const [from, to] of [[2, 3], [3, 1]] as const) {
        test({ mode, who, how, when: "during", from, to });
      }
    }
    if (who === "sum") {
      test({ mode, who, how: "throw", when: "during", from: 2, to: 3, sumAt: "snapshot" });
    }
  }
}

// 4. Right after scale() resolved, before the next aligned checkpoint is stored.

for (const mode of modes) {
  for (const how of hows(mode)) {
    for (const who of ["hop", "sum", "src"] as const) {
      const s: Scenario = { mode, who, how, when: "after", from: 2, to: 3 };
      test(s);
    }
  }
}

// 4b. As scale() is called: the failure lands while its pause waits for the acks.

for (const mode of modes) {
  for (const how of hows(mode)) {
    for (const who of ["hop", "sum", "src"] as const) {
      const s: Scenario = { mode, who, how, when: "start", from: 2, to: 3 };
      test(s);
    }
  }
}

// 5. one_for_all on the hop (2 instances): instance 0 fails during the rescale, both restart.

for (const mode of modes) {
  for (const how of hows(mode)) {
    const s: Scenario = {
      mode,
      who: "hop",
      how,
      when: "during",
      from: 2,
      to: 3,
      hops: 2,
      strategy: "one_for_all",
    };
    test(s);
  }
}

// Controls: the source failing with no rescale, or once aligned checkpoints were stored after it.
for (const mode of modes) {
  for (const how of hows(mode)) {
    for (const when of ["noscale", "late"] as const) {
      const s: Scenario = { mode, who: "src", how, when, from: 2, to: 3 };
      test(s);
    }
  }
}

// A control: the same pipeline and rescale without any fault is exact.
for (const mode of modes) {
  Deno.test({
    name: `${mode}: control: scale(sum 2→3) with no fault: exact per-key sums`,
    ...loose,
    fn: async () => {
      const f = await faultFiles("sluice-r12-");
      try {
        const out = `${f.dir}/out`, near = `${f.dir}/near`;
        const p = make(mode)
          .from(
            source({ nearFile: near }),
            { name: "src", fuse: false, permissions: f.perms },
          )
          .via(r12("hop", {}), { name: "hop", fuse: false, capacity: 64 })
          .keyBy()
          .via(r12("sum", {}), { name: "sum", fuse: false, parallelism: 2 })
          .to(r9("sink", { out }, "sink"), { name: "out", fuse: false, permissions: f.perms });
        const running = p.run();
        running.catch(() => {});
        await until(() => exists(near), 5000, "the source at id 800");
        await settles(p.scale("sum", 3), 8000, "scale()");
        const summary = await settles(running, 12_000, "run()");
        assert.equal(await verdict(out, COUNT), null);
        assert.deepEqual(codes(summary), []);
      } finally {
        await Deno.remove(f.dir, { recursive: true }).catch(() => {});
      }
    },
  });
}

// ---------------------------------------------------------------------------------------------
// Another branch: a second source feeds a keyed sum of its own, which the rescale of `sum` does
// not touch; that source fails during the rescale. Expected: exact on both branches. Happened
// (b3d851b), in workers, 3 of 3 runs: 100–260 records of the other branch counted twice. Cause: during
// the rescale every stateful instance was checkpointed alone, the other branch's sum too, past the
// place its source restarts from. Fix: only the rescaled stage and those below it are, the others
// wait for the next aligned checkpoint (`Runtime.#wantCheckpoint`). (was a bug)

for (const mode of modes) {
  for (const how of hows(mode)) {
    Deno.test({
      name:
        `${mode}: scale(sum 2→3) while the source of another branch's keyed sum fails (${how}): exact sums on both branches`,
      ...loose,
      fn: async () => {
        const f = await faultFiles("sluice-r12-");
        try {
          const out = `${f.dir}/out`, out2 = `${f.dir}/out2`, near = `${f.dir}/near`;
          const announce = `${f.dir}/announce`, failedFile = `${f.dir}/failed`;
          const p = make(mode);
          p.from(source({ nearFile: near }), { name: "src", fuse: false, permissions: f.perms })
            .via(r12("hop", {}), { name: "hop", fuse: false, capacity: 64 })
            .keyBy()
            .via(r12("sum", { announce, announceFrom: 2, openDelayMs: 150 }), {
              name: "sum",
              fuse: false,
              parallelism: 2,
              permissions: f.perms,
            })
            .to(r9("sink", { out }, "sink"), { name: "out", fuse: false, permissions: f.perms });
          const fault = { trigger: announce, marker: f.marker, how, failedFile };
          p.from(source({ fault }), { name: "src2", fuse: false, permissions: f.perms })
            .keyBy()
            .via(r12("sum", {}), { name: "sum2", fuse: false, permissions: f.perms })
            .to(r9("sink", { out: out2 }, "sink"), {
              name: "out2",
              fuse: false,
              permissions: f.perms,
            });
          const running = p.run();
          running.catch(() => {});
          try {
            await until(() => exists(near), 5000, "the source at id 800");
            await settles(p.scale("sum", 3), 8000, "scale(sum, 3)");
            const summary = await settles(running, 12_000, "run()");
            assert.ok(exists(failedFile), "src2 failed");
            assert.ok(codes(summary).includes(`src2 ${codeOf(how)}`), codes(summary).join());
            assert.equal(await verdict(out2, COUNT), null, "the other branch's sums");
            assert.equal(await verdict(out, COUNT), null, "the rescaled sums");
          } finally {
            await settles(p.stop().catch(() => {}), 5000, "stop()").catch(() => {});
          }
        } finally {
          await Deno.remove(f.dir, { recursive: true }).catch(() => {});
        }
      },
    });
  }
}
