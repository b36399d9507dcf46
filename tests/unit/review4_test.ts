// Review 4: adversarial tests of the supervision / shutdown / rescale changes (45c5a5e..HEAD).
// Each test marked "(was a bug)" failed on the code as reviewed (c45c46f).
import assert from "node:assert/strict";
import { collect } from "../../mod.ts";
import {
  expectedSums,
  faultFiles,
  faultPipeline,
  pacedSource,
  type Sum,
  sumsOf,
} from "./_paced.ts";
import { fixtureRef } from "./_fixture_ref.ts";
import { sleep, until, within } from "./_wait.ts";

const r4 = fixtureRef(new URL("./fixtures/review4_stages.ts", import.meta.url));
const rv3 = fixtureRef(new URL("./fixtures/review3_scaling_stages.ts", import.meta.url));

// ---------------------------------------------------------------------------------------------
// A failure that lands in step 1 of a rescale (the pause) deadlocks it
// ---------------------------------------------------------------------------------------------

for (const mode of ["inline", "workers"] as const) {
  Deno.test({
    name:
      `[${mode}] the keyed sum itself fails while scale() waits for its pause: scale() and run() settle (was a bug)`,
    sanitizeOps: false,
    sanitizeResources: false,
    fn: async () => {
      const count = 20_000;
      const f = await faultFiles("review4-");
      const out = collect<Sum>();
      const p = faultPipeline(mode);
      p.from(pacedSource(count, 100, 1))
        .keyBy()
        // 15 ms a batch: its mailbox stays full, so the pause (everything sent to it acked) takes
        // a few hundred ms; it fails on its next batch once the trigger exists.
        .via(r4("slowSum", { delayMs: 15, trigger: f.trigger, marker: f.marker }), {
          name: "sum",
          fuse: false,
          permissions: f.perms,
        })
        .to(out.sink);
      const running = p.run();
      running.catch(() => {});
      try {
        await sleep(300);
        const scaled = p.scale("sum", 2);
        scaled.catch(() => {});
        await Deno.writeTextFile(f.trigger, "x");
        await until(() => (p.counters().sum?.restarts ?? 0) > 0, 3000);
        const ran = await within(running, 9000);
        assert.notEqual(
          ran,
          "timed out",
          "run() hung: the sum's restart waits for the rescale, " +
            "whose pause waits for the dead sum's acks",
        );
        assert.notEqual(await within(scaled, 1000), "timed out", "scale() hung");
        assert.deepEqual(await sumsOf(out), expectedSums(count, 20));
      } finally {
        await p.stop().catch(() => {});
        await out.clear();
        await Deno.remove(f.dir, { recursive: true }).catch(() => {});
      }
    },
  });
}

Deno.test({
  name:
    "[workers] a stage two levels above the keyed sum fails while scale() waits for its pause: scale() and run() settle (was a bug)",
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async () => {
    const count = 20_000;
    const f = await faultFiles("review4-");
    const out = collect<Sum>();
    const p = faultPipeline("workers");
    p.from(pacedSource(count, 100, 1))
      // Not in the rescaled region (it is not directly above the sum). Its failure (an uncaught
      // throw from a timer, once the trigger exists) takes the stateful sum below it down too,
      // whose restart is held by the rescale.
      .via(rv3("relay", { trigger: f.trigger, marker: f.marker, timer: true }), {
        name: "top",
        fuse: false,
        permissions: f.perms,
      })
      .via(rv3("relay", {}), { name: "mid", fuse: false })
      .keyBy()
      .via(r4("slowSum", { delayMs: 15 }), { name: "sum", fuse: false })
      .to(out.sink);
    const running = p.run();
    running.catch(() => {});
    try {
      await sleep(400);
      const scaled = p.scale("sum", 2);
      scaled.catch(() => {});
      await Deno.writeTextFile(f.trigger, "x");
      await until(() => (p.counters().top?.restarts ?? 0) > 0, 3000);
      const ran = await within(running, 9000);
      assert.notEqual(ran, "timed out", "run() hung");
      assert.notEqual(await within(scaled, 1000), "timed out", "scale() hung");
      // (Sums not checked: a failure two levels above the sum counts records twice, see below.)
    } finally {
      await p.stop().catch(() => {});
      await out.clear();
      await Deno.remove(f.dir, { recursive: true }).catch(() => {});
    }
  },
});

// ---------------------------------------------------------------------------------------------
// A stateless stage two levels above a keyed sum fails (no rescale): the sum counts records twice
// ---------------------------------------------------------------------------------------------

for (const mode of ["inline", "workers"] as const) {
  Deno.test({
    name:
      `[${mode}] a stateless stage two levels above the keyed sum fails: its replay is not counted twice (was a bug)`,
    sanitizeOps: false,
    sanitizeResources: false,
    fn: async () => {
      const count = 20_000;
      const f = await faultFiles("review4-");
      const out = collect<Sum>();
      const p = faultPipeline(mode);
      p.from(pacedSource(count, 100, 1))
        // Fails once from beforeBatch once the trigger exists.
        .via(rv3("relay", { trigger: f.trigger, marker: f.marker }), {
          name: "top",
          fuse: false,
          permissions: f.perms,
        })
        .via(rv3("relay", {}), { name: "mid", fuse: false })
        .keyBy()
        .via(r4("slowSum", { delayMs: 15 }), { name: "sum", fuse: false })
        .to(out.sink);
      const running = p.run();
      running.catch(() => {});
      try {
        await sleep(400);
        await Deno.writeTextFile(f.trigger, "x");
        const ran = await within(running, 9000);
        assert.notEqual(ran, "timed out", "run() hung");
        assert.ok((p.counters().top?.restarts ?? 0) >= 1, "top failed");
        // Before the fix every run counted 10–25 % twice (mid replayed what it kept). Then a
        // checkpoint stored just before top died kept input that top's replacement got again (~1 %,
        // about 1 run in 5), until each stored checkpoint was told to every task. Exact now.
        assert.deepEqual(await sumsOf(out), expectedSums(count, 20));
      } finally {
        await p.stop().catch(() => {});
        await out.clear();
        await Deno.remove(f.dir, { recursive: true }).catch(() => {});
      }
    },
  });
}

// ---------------------------------------------------------------------------------------------
// Sound: a RetriableError from a stateful processor's flush drops what the attempt emitted
// ---------------------------------------------------------------------------------------------

for (const mode of ["inline", "workers"] as const) {
  Deno.test(`[${mode}] a RetriableError thrown by flush() after emitting: retried, each key once`, async () => {
    const count = 3000;
    const out = collect<Sum>();
    const p = faultPipeline(mode);
    p.from(pacedSource(count, 100, 0)).keyBy()
      .via(r4("flakyFlushSum", { failures: 2 }), { name: "sum", fuse: false, parallelism: 2 })
      .to(out.sink);
    try {
      const summary = await p.run();
      assert.deepEqual(await sumsOf(out), expectedSums(count, 20));
      assert.equal(summary.stages.sum?.restarts, 0);
      assert.equal(summary.stages.sum?.failed, 4);
    } finally {
      await out.clear();
    }
  });
}
