// Review 3: adversarial tests of supervision and lifecycle (stop, dispose, run twice, escalation,
// restarts, hung workers and hooks, dead letters in fused chains, close() at the end of input).
// Each test marked "(was a bug)" failed on the code as reviewed (b6e53f0).
import assert from "node:assert/strict";
import {
  collect,
  ConfigError,
  type DeadLetter,
  fromArray,
  map,
  memoryDeadLetters,
  pipeline,
  PipelineError,
  type StreamRecord,
} from "../../mod.ts";
import { fixtureRef } from "./_fixture_ref.ts";
import { release } from "./fixtures/_hang.ts";
import { until, within } from "./_wait.ts";

const ref = fixtureRef(new URL("./fixtures/review3_lifecycle_stages.ts", import.meta.url));
const runtimeRef = fixtureRef(new URL("./fixtures/runtime_stages.ts", import.meta.url));

type Ev = { id: number };
const leakChecked = { sanitizeResources: true, sanitizeOps: true };
const modes = ["inline", "workers"] as const;

function input(count: number): StreamRecord<Ev>[] {
  return Array.from({ length: count }, (_, id) => ({ value: { id }, ts: id }));
}

async function lines(path: string): Promise<string[]> {
  const text = await Deno.readTextFile(path).catch(() => "");
  return text.split("\n").filter(Boolean);
}

function assertAtLeastOnce(got: number[], count: number): void {
  const distinct = new Set(got);
  for (let i = 0; i < count; i++) assert.ok(distinct.has(i), `id ${i} missing`);
  assert.equal(distinct.size, count, `expected ${count} distinct ids, got ${distinct.size}`);
}

/** run()'s outcome, caught at once so that a rejection is never unhandled. */
function settle<T>(running: Promise<T>): Promise<T | Error> {
  return running.catch((e: Error) => e);
}

function perms(dir: string) {
  return { read: [dir], write: [dir] };
}

/** Every "open X" in a trace has a "close X" (counted per stage#instance). */
function assertBalanced(trace: string[]): void {
  const count = new Map<string, number>();
  for (const l of trace) {
    const [what, who] = l.split(" ");
    count.set(who!, (count.get(who!) ?? 0) + (what === "open" ? 1 : -1));
  }
  for (const [who, n] of count) assert.equal(n, 0, `${who}: opens and closes differ by ${n}`);
}

// ---------------------------------------------------------------------------------------------
// stop(), dispose, run() twice
// ---------------------------------------------------------------------------------------------

for (const mode of modes) {
  Deno.test(`stop() issued while the source is still opening is not lost (${mode}) (was a bug)`, async () => {
    const dir = await Deno.makeTempDir();
    const ids = `${dir}/ids`;
    const stopTimeoutMs = 3000;
    const p = pipeline({ mode, signals: false, stopTimeoutMs });
    p.from(ref("endless", { perPull: 10, delayMs: 5, openDelayMs: 400 }, "source"))
      .to(ref("idSink", { ids }, "sink"), { permissions: perms(dir), fuse: false });
    const running = settle(p.run());
    // The runtime exists (counters have stage entries) while the source still opens.
    await until(() => Object.keys(p.counters()).length > 0);
    const stopping = Date.now();
    await p.stop();
    const took = Date.now() - stopping;
    const result = await running;
    await Deno.remove(dir, { recursive: true });
    // Promised: "pipeline.stop() ...: sources stop pulling, in-flight records drain" — gracefully.
    assert.ok(!(result instanceof Error), `run() rejected: ${result}`);
    assert.ok(took < 2000, `stop() took ${took} ms`);
  });
}

for (const mode of modes) {
  Deno.test(`stop() during a source's restart backoff also stops its replacement (${mode}) (was a bug)`, async () => {
    const dir = await Deno.makeTempDir();
    const ids = `${dir}/ids`;
    const stopTimeoutMs = 3000;
    const p = pipeline({ mode, signals: false, stopTimeoutMs });
    // The source fails once at id 50; its close() takes 400 ms, so its replacement is spawned
    // that long after the failure: stop() lands in between.
    p.from(
      ref("endless", {
        perPull: 10,
        delayMs: 2,
        failAt: 50,
        marker: `${dir}/marker`,
        closeDelayMs: 400,
      }, "source"),
      { permissions: perms(dir) },
    ).to(ref("idSink", { ids }, "sink"), { permissions: perms(dir), fuse: false });
    const running = settle(p.run());
    await until(() => (p.counters().endless?.restarts ?? 0) >= 1);
    const stopping = Date.now();
    await p.stop();
    const took = Date.now() - stopping;
    const result = await running;
    await Deno.remove(dir, { recursive: true });
    assert.ok(!(result instanceof Error), `run() rejected: ${result}`);
    assert.ok(took < 2000, `stop() took ${took} ms`);
  });
}

Deno.test("a second concurrent stop() resolves only once the pipeline has stopped (inline) (was a bug)", async () => {
  const dir = await Deno.makeTempDir();
  const trace = `${dir}/trace`;
  const p = pipeline({ mode: "inline", signals: false, stopTimeoutMs: 3000 });
  p.from(ref("endless", { perPull: 10, delayMs: 2, trace, closeDelayMs: 200 }, "source"))
    .to(ref("idSink", { ids: `${dir}/ids`, trace }, "sink"), { fuse: false });
  let settled = false;
  const running = settle(p.run()).finally(() => settled = true);
  await until(() => (p.counters().endless?.instances[0]?.out ?? 0) > 0);
  const first = p.stop();
  // e.g. SIGTERM while an explicit stop() runs, or `await using` after an unawaited stop().
  await p.stop();
  const settledAtSecond = settled;
  const closedAtSecond = (await lines(trace)).filter((l) => l.startsWith("close")).length;
  await first;
  const result = await running;
  await Deno.remove(dir, { recursive: true });
  assert.ok(!(result instanceof Error), String(result));
  // Runtime.stop(): "Resolves once every instance has ended."
  assert.ok(settledAtSecond, "the second stop() resolved while the pipeline was still running");
  assert.equal(closedAtSecond, 2, "the second stop() resolved before the stages were closed");
});

Deno.test(" (was a bug)`await using` stops a pipeline whose run() was called just before scope exit (inline)", async () => {
  const dir = await Deno.makeTempDir();
  let running: Promise<unknown> | undefined;
  let p: ReturnType<typeof pipeline> | undefined;
  {
    await using q = pipeline({ mode: "inline", signals: false, stopTimeoutMs: 2000 });
    p = q;
    q.from(ref("endless", { perPull: 10, delayMs: 2 }, "source"))
      .to(ref("idSink", { ids: `${dir}/ids` }, "sink"), { fuse: false });
    running = settle(q.run());
    // scope exit: README "`await using p = pipeline(…)` stops it on scope exit"
  }
  const result = await within(running!, 3000);
  if (result === "timed out") {
    await p!.stop(); // clean up: the runtime exists by now
    await running;
  }
  await Deno.remove(dir, { recursive: true });
  assert.notEqual(result, "timed out", "the pipeline kept running after its scope was disposed");
});

Deno.test("run() called twice concurrently runs the pipeline once (inline) (was a bug)", async () => {
  const out = collect<Ev>();
  const p = pipeline({ mode: "inline", signals: false });
  p.from(fromArray(input(20))).to(out.sink);
  const results = await Promise.allSettled([p.run(), p.run()]);
  const got = (await out.values()).map((v) => v.id);
  await out.clear();
  const rejected = results.filter((r) => r.status === "rejected");
  assert.equal(
    rejected.length,
    1,
    `both run() calls ran (${got.length} records written for 20 in): ` +
      JSON.stringify(results.map((r) => r.status)),
  );
  assert.ok((rejected[0] as PromiseRejectedResult).reason instanceof TypeError);
  assert.equal(got.length, 20, `${got.length} records written for 20 in`);
});

Deno.test("run() after run() and stop() after the end are harmless (inline)", async () => {
  const out = collect<Ev>();
  const p = pipeline({ mode: "inline", signals: false });
  p.from(fromArray(input(20))).to(out.sink);
  await p.stop(); // before run(): nothing to stop
  const summary = await p.run();
  assert.equal(summary.stages.collect?.in, 20);
  await assert.rejects(() => p.run(), TypeError);
  await p.stop();
  await p.stop();
  await p[Symbol.asyncDispose]();
  assert.equal((await out.values()).length, 20);
  await out.clear();
});

for (const mode of modes) {
  Deno.test({
    name: `await using a running pipeline stops it gracefully and closes every stage (${mode})`,
    ...(mode === "inline" ? leakChecked : {}),
    async fn() {
      const dir = await Deno.makeTempDir();
      const trace = `${dir}/trace`;
      let running: Promise<unknown> | undefined;
      {
        await using p = pipeline({ mode, signals: false, stopTimeoutMs: 3000 });
        p.from(ref("endless", { perPull: 10, delayMs: 2, trace }, "source"), {
          permissions: perms(dir),
        })
          .via(ref("tracer", { trace }), { fuse: false, permissions: perms(dir) })
          .to(ref("idSink", { ids: `${dir}/ids`, trace }, "sink"), { permissions: perms(dir) });
        running = settle(p.run());
        await until(() => (p.counters().idSink?.instances[0]?.in ?? 0) > 0);
      }
      const result = await running;
      assert.ok(!(result instanceof Error), String(result));
      const t = await lines(trace);
      assert.equal(t.filter((l) => l.startsWith("open")).length, 3);
      assertBalanced(t);
      // Everything the source handed out was written (graceful drain).
      const got = (await lines(`${dir}/ids`)).map(Number);
      assertAtLeastOnce(got, new Set(got).size);
      await Deno.remove(dir, { recursive: true });
    },
  });
}

// ---------------------------------------------------------------------------------------------
// Escalation
// ---------------------------------------------------------------------------------------------

for (const strategy of ["one_for_one", "rest_for_one", "one_for_all"] as const) {
  Deno.test({
    name:
      `Escalation (${strategy}) rejects with stage, instance, partitions and cause; every stage closed; no leaks (inline)`,
    ...leakChecked,
    async fn() {
      const dir = await Deno.makeTempDir();
      const trace = `${dir}/trace`;
      const p = pipeline({ mode: "inline", signals: false, name: "esc", partitions: 8 });
      p.from(fromArray(input(400)), { batchSize: 20 })
        .keyBy((v: Ev) => `k${v.id % 5}`)
        .via(ref("tracer", { trace, failAt: 123, always: true }), {
          name: "flaky",
          parallelism: 2,
          strategy,
          maxRestarts: 2,
          withinMs: 60_000,
        })
        .to(ref("idSink", { ids: `${dir}/ids`, trace }, "sink"), { fuse: false });
      const result = await settle(p.run());
      assert.ok(result instanceof PipelineError, String(result));
      assert.equal(result.site.stage, "flaky");
      assert.equal(typeof result.site.instance, "number");
      assert.ok((result.site.partitions ?? []).length > 0, "partitions named");
      assert.match(result.message, /stage "flaky" instance \d \(partitions [\d,]+\)/);
      assert.match(result.message, /failed 3 times/);
      assert.match(result.message, /boom at 123/);
      const t = await lines(trace);
      assertBalanced(t);
      await Deno.remove(dir, { recursive: true });
    },
  });
}

Deno.test(
  { name: "Escalation rejects and closes every stage; no leaks (workers)", ...leakChecked },
  async () => {
    const dir = await Deno.makeTempDir();
    const trace = `${dir}/trace`;
    const p = pipeline({ mode: "workers", signals: false, name: "escw" });
    p.from(fromArray(input(400)), { batchSize: 20 })
      .via(ref("tracer", { trace }), { name: "before", fuse: false, permissions: perms(dir) })
      .via(ref("tracer", { trace, failAt: 123, always: true }), {
        name: "flaky",
        fuse: false,
        maxRestarts: 2,
        permissions: perms(dir),
      })
      .to(ref("idSink", { ids: `${dir}/ids`, trace }, "sink"), { permissions: perms(dir) });
    const result = await settle(p.run());
    assert.ok(result instanceof PipelineError, String(result));
    assert.match(result.message, /stage "flaky" instance 0 failed 3 times/);
    assert.match(result.message, /boom at 123/);
    const t = await lines(trace);
    assert.equal(t.filter((l) => l.startsWith("open flaky")).length, 3);
    assertBalanced(t);
    await Deno.remove(dir, { recursive: true });
  },
);

for (const mode of modes) {
  Deno.test(`maxRestarts set on a processor fused behind its source is honoured (${mode}) (was a bug)`, async () => {
    const dir = await Deno.makeTempDir();
    const trace = `${dir}/trace`;
    const p = pipeline({ mode, signals: false });
    // source → flaky → sink at parallelism 1: one fused task. README: "Supervision. Per stage:
    // `strategy`, `maxRestarts` (5) within `withinMs`"; this stage allows no restart.
    p.from(fromArray(input(100)), { batchSize: 10 })
      .via(ref("tracer", { trace, failAt: 42, always: true }), {
        name: "flaky",
        maxRestarts: 0,
        permissions: perms(dir),
      })
      .to(ref("idSink", { ids: `${dir}/ids` }, "sink"), { permissions: perms(dir) });
    const result = await settle(p.run());
    const opens = (await lines(trace)).filter((l) => l.startsWith("open")).length;
    await Deno.remove(dir, { recursive: true });
    assert.ok(result instanceof PipelineError, String(result));
    assert.equal(result.site.stage, "flaky");
    assert.equal(opens, 1, `the stage was opened ${opens} times: restarted despite maxRestarts 0`);
    assert.match(result.message, /failed 1 times/);
  });
}

Deno.test({
  name: "a forced stop() during a long restart backoff leaves no timer behind (inline) (was a bug)",
  ...leakChecked,
  async fn() {
    const p = pipeline({ mode: "inline", signals: false, stopTimeoutMs: 100 });
    p.from(fromArray(input(50)))
      .via(ref("tracer", { failEvery: true }), {
        name: "flaky",
        fuse: false,
        maxRestarts: 100,
        withinMs: 600_000,
      })
      .to(collect().sink);
    const running = settle(p.run());
    // Backoff doubles from 10 ms: after 8 restarts the next one waits 0.6–1.3 s.
    await until(() => (p.counters().flaky?.restarts ?? 0) >= 8, 8000);
    await p.stop();
    const result = await running;
    assert.ok(result instanceof PipelineError && /forced/.test(result.message), String(result));
    // The op sanitizer fails this test if the restart timer is still pending.
  },
});

Deno.test({
  name:
    "escalation while another instance waits in restart backoff leaves no timer behind (inline) (was a bug)",
  ...leakChecked,
  async fn() {
    const p = pipeline({ mode: "inline", signals: false });
    // Two instances fail on every batch; restart intensity is shared by the stage, so one of
    // them escalates while the other's restart timer (growing backoff) is pending.
    p.from(fromArray(input(2000)), { batchSize: 10 })
      .via(ref("tracer", { failEvery: true }), {
        name: "flaky",
        parallelism: 2,
        maxRestarts: 9,
        withinMs: 600_000,
      })
      .to(collect().sink);
    const result = await settle(p.run());
    assert.ok(result instanceof PipelineError, String(result));
    assert.match(result.message, /failed 10 times/);
  },
});

// ---------------------------------------------------------------------------------------------
// open() failures, config errors
// ---------------------------------------------------------------------------------------------

for (const mode of modes) {
  Deno.test(`A config error fails fast with the zod path, before any stage opens (${mode})`, async () => {
    const dir = await Deno.makeTempDir();
    const trace = `${dir}/trace`;
    const p = pipeline({ mode, signals: false });
    p.from(ref("endless", { perPull: 10, delayMs: 0, count: 10, trace }, "source"))
      .via(ref("tracer", { trace, failAt: "seven" }), { name: "bad" })
      .to(ref("idSink", { ids: `${dir}/ids`, trace }, "sink"), { fuse: false });
    const started = Date.now();
    const result = await settle(p.run());
    assert.ok(result instanceof ConfigError, String(result));
    assert.match(result.message, /^Cannot configure stage "bad": config\.failAt: /);
    assert.ok(Date.now() - started < 2000);
    assert.deepEqual(await lines(trace), [], "nothing opened");
    await Deno.remove(dir, { recursive: true });
  });

  Deno.test(`An open() that throws is restarted, then escalates naming the cause (${mode})`, async () => {
    const dir = await Deno.makeTempDir();
    const p = pipeline({ mode, signals: false, name: "opens" });
    p.from(fromArray(input(10)))
      .via(ref("tracer", { openFail: "always" }), { name: "opener", fuse: false, maxRestarts: 2 })
      .to(ref("idSink", { ids: `${dir}/ids` }, "sink"), { permissions: perms(dir) });
    const result = await settle(p.run());
    assert.ok(result instanceof PipelineError, String(result));
    assert.match(result.message, /stage "opener" instance 0 failed 3 times/);
    assert.match(result.message, /cannot connect to the lookup server/);
    await Deno.remove(dir, { recursive: true });
  });

  Deno.test(`An open() that throws once is restarted and the run completes (${mode})`, async () => {
    const dir = await Deno.makeTempDir();
    const p = pipeline({ mode, signals: false });
    p.from(fromArray(input(100)))
      .via(ref("tracer", { openFail: "once", marker: `${dir}/m` }), {
        name: "opener",
        fuse: false,
        permissions: perms(dir),
      })
      .to(ref("idSink", { ids: `${dir}/ids` }, "sink"), { permissions: perms(dir) });
    const summary = await p.run();
    assert.equal(summary.stages.opener?.restarts, 1);
    assertAtLeastOnce((await lines(`${dir}/ids`)).map(Number), 100);
    await Deno.remove(dir, { recursive: true });
  });
}

// ---------------------------------------------------------------------------------------------
// Hung workers and hooks
// ---------------------------------------------------------------------------------------------

Deno.test("A hung worker in a fused chain is replaced; every id arrives at least once (workers)", async () => {
  const dir = await Deno.makeTempDir();
  const marker = `${dir}/marker`;
  const ids = `${dir}/ids`;
  const heartbeatMs = 200;
  let hungAt = NaN;
  const summary = await pipeline({ mode: "workers", signals: false, heartbeatMs })
    .from(fromArray(input(2000)), { batchSize: 100 })
    .via(map((v: Ev) => ({ id: v.id })))
    .via(ref("tracer", { hangAt: 1000, marker }), { name: "hanger", permissions: perms(dir) })
    .to(ref("idSink", { ids }, "sink"), { permissions: perms(dir) })
    .run()
    .finally(async () => hungAt = await release(marker)); // a hung worker spins until then
  const got = (await lines(ids)).map(Number);
  assertAtLeastOnce(got, 2000);
  // The source cannot seek: the replacement replays from the start; duplicates are what the hung
  // incarnation wrote before it hung.
  assert.ok(got.length - 2000 <= 1000, `${got.length - 2000} duplicates`);
  assert.equal(summary.failures[0]?.code, "E_HEARTBEAT");
  assert.ok(summary.failures[0]!.at - hungAt <= 2.25 * heartbeatMs + 100);
  await Deno.remove(dir, { recursive: true });
});

Deno.test("A close() that hangs after a failure holds back neither the restart nor the end (workers)", async () => {
  const dir = await Deno.makeTempDir();
  const trace = `${dir}/trace`;
  const started = Date.now();
  const summary = await pipeline({ mode: "workers", signals: false, defaults: { batchSize: 50 } })
    .from(fromArray(input(500)))
    .via(ref("tracer", { trace, failAt: 250, marker: `${dir}/m`, hangClose: true }), {
      name: "h",
      fuse: false,
      permissions: perms(dir),
    })
    .to(ref("idSink", { ids: `${dir}/ids` }, "sink"), { permissions: perms(dir) })
    .run();
  assert.ok(Date.now() - started < 5000, `took ${Date.now() - started} ms`);
  assert.equal(summary.stages.h?.restarts, 1);
  assert.deepEqual(summary.failures.map((f) => f.code), ["Error", "E_CLOSE_TIMEOUT"]);
  assertAtLeastOnce((await lines(`${dir}/ids`)).map(Number), 500);
  assert.deepEqual(await lines(trace), ["open h#0", "close h#0", "open h#0", "close h#0"]);
  await Deno.remove(dir, { recursive: true });
});

// ---------------------------------------------------------------------------------------------
// A source that ends while downstream restarts
// ---------------------------------------------------------------------------------------------

for (const strategy of ["one_for_one", "rest_for_one", "one_for_all"] as const) {
  Deno.test(`No record is lost when the source ends while a downstream instance restarts (${strategy}, workers)`, async () => {
    const dir = await Deno.makeTempDir();
    const ids = `${dir}/ids`;
    const count = 3000;
    const summary = await pipeline({ mode: "workers", signals: false })
      .from(ref("endless", { perPull: 50, delayMs: 0, count }, "source"), { batchSize: 50 })
      .via(ref("tracer", { failAt: count - 10, marker: `${dir}/m` }), {
        name: "late",
        fuse: false,
        parallelism: 2,
        strategy,
        permissions: perms(dir),
      })
      .to(ref("idSink", { ids }, "sink"), { permissions: perms(dir) })
      .run();
    const got = (await lines(ids)).map(Number);
    assertAtLeastOnce(got, count);
    assert.equal(summary.stages.late?.restarts, 1);
    // Duplicates only from the replay of unacked batches (at most RETAIN × capacity per sender).
    assert.ok(got.length - count <= 2 * 4 * 8 * 50, `${got.length - count} duplicates`);
    await Deno.remove(dir, { recursive: true });
  });
}

// ---------------------------------------------------------------------------------------------
// Dead letters in a fused chain
// ---------------------------------------------------------------------------------------------

for (const mode of modes) {
  Deno.test(`A poison record in a fused chain is dead-lettered naming the right stage (${mode})`, async () => {
    const dead = memoryDeadLetters();
    const out = collect<{ id: number; poison?: boolean; tag: string }>();
    const records = Array.from(
      { length: 200 },
      (_, id) => ({ value: { id, poison: id % 50 === 7 }, ts: id, key: `k${id}` }),
    );
    const summary = await pipeline({ mode, signals: false, deadLetter: dead })
      .from(fromArray(records))
      .via(map((v: { id: number; poison: boolean }) => ({ ...v, tag: "mapped" })))
      .via(runtimeRef("poisonous", {}), { name: "poison", maxRetries: 3 })
      .via(map((v: { id: number; poison: boolean; tag: string }) => v))
      .to(out.sink)
      .run();
    const got = await out.values();
    assert.equal(got.length, 196);
    const entries: DeadLetter[] = dead.entries;
    assert.deepEqual(
      entries.map((e) => (e.record.value as { id: number }).id).sort((a, b) => a - b),
      [7, 57, 107, 157],
    );
    for (const e of entries) {
      assert.equal(e.stage, "poison");
      assert.equal(e.instance, 0);
      assert.equal(e.attempts, 4);
      assert.match(e.error.message, /poison record/);
      const v = e.record.value as { id: number; tag: string; poison: boolean };
      assert.equal(v.tag, "mapped");
      assert.equal(v.poison, true);
      assert.equal(e.record.key, `k${v.id}`);
      assert.equal(e.record.ts, v.id);
    }
    assert.equal(summary.stages.poison?.deadLettered, 4);
    assert.equal(summary.stages.poison?.failed, 16);
    assert.equal(summary.stages.poison?.restarts, 0);
    await out.clear();
  });
}

// ---------------------------------------------------------------------------------------------
// A slow close() at the normal end of a run
// ---------------------------------------------------------------------------------------------

for (const slow of ["source", "sink"] as const) {
  Deno.test(`a ${slow} whose close() takes a few heartbeats at the end of input is not taken for hung (workers) (was a bug)`, async () => {
    const dir = await Deno.makeTempDir();
    const ids = `${dir}/ids`;
    const trace = `${dir}/trace`;
    const heartbeatMs = 200;
    // close() takes 700 ms (a client disconnecting, a producer flushing its buffers): more than
    // two heartbeat periods, far less than stopTimeoutMs. Nothing else is slow or fails.
    const closeDelayMs = 700;
    const p = pipeline({ mode: "workers", signals: false, heartbeatMs, stopTimeoutMs: 1000 });
    p.from(
      ref("endless", {
        perPull: 50,
        delayMs: 0,
        count: 500,
        trace,
        ...(slow === "source" ? { closeDelayMs } : {}),
      }, "source"),
      { permissions: perms(dir) },
    ).to(
      ref(slow === "sink" ? "slowCloseSink" : "idSink", { ids, trace, closeDelayMs }, "sink"),
      { fuse: false, permissions: perms(dir) },
    );
    const running = settle(p.run());
    const result = await within(running, 5000);
    if (result === "timed out") {
      await p.stop(); // forced after stopTimeoutMs
      await running;
    }
    const got = (await lines(ids)).map(Number);
    const t = await lines(trace);
    await Deno.remove(dir, { recursive: true });
    if (result === "timed out") {
      assert.fail(`run() never resolved; trace ${JSON.stringify(t)}, ${got.length} ids written`);
    }
    assert.ok(!(result instanceof Error), String(result));
    assert.deepEqual(result.failures, [], "a clean end was handled as a failure");
    assert.equal(got.length, 500, `${got.length} records written for 500 read`);
    assertBalanced(t);
    assert.equal(t.length, 4, `trace ${JSON.stringify(t)}`);
  });
}

for (const mode of modes) {
  Deno.test(`A close() that throws at the end of input is reported, not restarted (${mode}) (was a bug)`, async () => {
    const dir = await Deno.makeTempDir();
    const ids = `${dir}/ids`;
    const summary = await pipeline({ mode, signals: false, stopTimeoutMs: 2000 })
      .from(fromArray(input(300)))
      .to(ref("slowCloseSink", { ids, closeDelayMs: 0, closeThrows: true }, "sink"), {
        fuse: false,
        permissions: perms(dir),
      })
      .run();
    const got = (await lines(ids)).map(Number);
    await Deno.remove(dir, { recursive: true });
    assert.equal(got.length, 300, "written once: the sink was not restarted and fed again");
    assertAtLeastOnce(got, 300);
    assert.equal(summary.stages.slowCloseSink?.restarts, 0);
    assert.equal(summary.failures.length, 1, JSON.stringify(summary.failures));
    assert.match(
      summary.failures[0]!.message,
      /Cannot close stage "slowCloseSink".*connection reset/,
    );
  });

  Deno.test(`A close() still running stopTimeoutMs after the end of input is given up on (${mode}) (was a bug)`, async () => {
    const dir = await Deno.makeTempDir();
    const ids = `${dir}/ids`;
    const started = Date.now();
    const summary = await pipeline({ mode, signals: false, stopTimeoutMs: 300 })
      .from(fromArray(input(300)))
      .to(ref("slowCloseSink", { ids, closeDelayMs: 5000 }, "sink"), {
        fuse: false,
        permissions: perms(dir),
      })
      .run();
    const took = Date.now() - started;
    const got = (await lines(ids)).map(Number);
    await Deno.remove(dir, { recursive: true });
    assert.ok(took < 3000, `run() took ${took} ms`);
    assert.equal(got.length, 300);
    assert.equal(summary.stages.slowCloseSink?.restarts, 0);
    assert.equal(summary.failures.length, 1, JSON.stringify(summary.failures));
    assert.equal(summary.failures[0]!.code, "E_CLOSE_TIMEOUT");
  });
}
