// The runtime under forced stops, restarts and transient faults: stages are closed on every path,
// retries end with the stage, transient faults of processors hold the stream instead of failing
// it, and options passed as `undefined` keep their defaults. Tests that check for leaks turn the
// resource and op sanitizers on (they are off by default).
import assert from "node:assert/strict";
import {
  collect,
  fromArray,
  memoryDeadLetters,
  pipeline,
  PipelineError,
  type StreamRecord,
} from "../../mod.ts";
import { fixtureRef } from "./_fixture_ref.ts";
import { pacedSource } from "./_paced.ts";

const ref = fixtureRef(new URL("./fixtures/robustness_stages.ts", import.meta.url));

type Ev = { id: number };

function input(count: number): StreamRecord<Ev>[] {
  return Array.from({ length: count }, (_, id) => ({ value: { id }, ts: id }));
}

async function lines(path: string): Promise<string[]> {
  const text = await Deno.readTextFile(path).catch(() => "");
  return text.split("\n").filter(Boolean);
}

function assertAllOnce(got: number[], count: number): void {
  const distinct = new Set(got);
  assert.equal(distinct.size, count, `expected ${count} distinct ids, got ${distinct.size}`);
  for (let i = 0; i < count; i++) assert.ok(distinct.has(i), `id ${i} missing`);
}

/** `run()`'s outcome, caught at once so that a rejection is never unhandled. */
function settle<T>(running: Promise<T>): Promise<T | Error> {
  return running.catch((e: Error) => e);
}

const leakChecked = { sanitizeResources: true, sanitizeOps: true };

Deno.test({
  name: "Task closes a stage whose hook threw before the supervisor restarts it (inline)",
  ...leakChecked,
  async fn() {
    const dir = await Deno.makeTempDir();
    const log = `${dir}/log`;
    const out = collect<Ev>();
    const summary = await pipeline({ mode: "inline", signals: false, defaults: { batchSize: 50 } })
      .from(fromArray(input(500)))
      .via(ref("holder", { log, failAt: 250, marker: `${dir}/marker` }), { fuse: false })
      .to(out.sink)
      .run();
    assert.equal(summary.stages.holder?.restarts, 1);
    assertAllOnce((await out.values()).map((v) => v.id), 500);
    // The failed incarnation is closed before its replacement opens.
    assert.deepEqual(await lines(log), ["open", "close", "open", "close"]);
    await out.clear();
    await Deno.remove(dir, { recursive: true });
  },
});

Deno.test({
  name: "Task.kill() closes every stage when stop() is forced (inline)",
  ...leakChecked,
  async fn() {
    const dir = await Deno.makeTempDir();
    const log = `${dir}/log`;
    const out = collect<Ev>();
    const p = pipeline({ mode: "inline", signals: false, stopTimeoutMs: 200 });
    p.from(fromArray(input(100)))
      .via(ref("holder", { log, hangAt: 10 }), { fuse: false })
      .to(out.sink);
    const running = settle(p.run());
    await new Promise((r) => setTimeout(r, 50));
    await p.stop();
    const result = await running;
    assert.ok(result instanceof PipelineError, String(result));
    assert.match(result.message, /forced/);
    assert.deepEqual(await lines(log), ["open", "close"]);
    await out.clear();
    await Deno.remove(dir, { recursive: true });
  },
});

Deno.test({
  name: "A close() that never resolves holds back neither a restart nor a forced stop (inline)",
  ...leakChecked,
  async fn() {
    const dir = await Deno.makeTempDir();
    const log = `${dir}/log`;
    const out = collect<Ev>();
    const started = Date.now();
    const summary = await pipeline({ mode: "inline", signals: false, defaults: { batchSize: 50 } })
      .from(fromArray(input(500)))
      .via(ref("holder", { log, failAt: 250, marker: `${dir}/marker`, hangClose: true }), {
        fuse: false,
      })
      .to(out.sink)
      .run();
    assert.ok(Date.now() - started < 3000, `took ${Date.now() - started} ms`);
    assert.equal(summary.stages.holder?.restarts, 1);
    assertAllOnce((await out.values()).map((v) => v.id), 500);
    // The hung close() is reported, and never called again.
    assert.deepEqual(
      summary.failures.map((f) => [f.stage, f.code]),
      [["holder", "Error"], ["holder", "E_CLOSE_TIMEOUT"]],
    );
    assert.deepEqual(await lines(log), ["open", "close", "open", "close"]);
    await out.clear();

    const stopTimeoutMs = 200;
    const p = pipeline({ mode: "inline", signals: false, stopTimeoutMs });
    p.from(fromArray(input(100)))
      .via(ref("holder", { hangAt: 10, hangClose: true }), { fuse: false })
      .to(out.sink);
    const running = settle(p.run());
    await new Promise((r) => setTimeout(r, 50));
    const stopping = Date.now();
    await p.stop();
    assert.ok(await running instanceof PipelineError);
    const took = Date.now() - stopping;
    assert.ok(took < stopTimeoutMs + 1500, `stop() took ${took} ms`);
    await out.clear();
    await Deno.remove(dir, { recursive: true });
  },
});

Deno.test("Task closes a stage whose hook threw before its worker ends (workers)", async () => {
  const dir = await Deno.makeTempDir();
  const log = `${dir}/log`;
  const out = collect<Ev>();
  const summary = await pipeline({ mode: "workers", signals: false, defaults: { batchSize: 50 } })
    .from(fromArray(input(500)))
    .via(ref("holder", { log, failAt: 250, marker: `${dir}/marker` }), {
      fuse: false,
      permissions: { net: ["127.0.0.1"], read: [dir], write: [dir] },
    })
    .to(out.sink)
    .run();
  assert.equal(summary.stages.holder?.restarts, 1);
  assertAllOnce((await out.values()).map((v) => v.id), 500);
  assert.deepEqual(await lines(log), ["open", "close", "open", "close"]);
  await out.clear();
  await Deno.remove(dir, { recursive: true });
});

Deno.test("Task connects a restarted upstream that it heard of while it was still opening", async () => {
  const dir = await Deno.makeTempDir();
  const log = `${dir}/log`;
  let timer: ReturnType<typeof setTimeout> | undefined;
  const p = pipeline({ mode: "inline", signals: false, stopTimeoutMs: 100 });
  // The holder fails on the first batch and is replaced while the sink still opens: the sink must
  // take its input from the replacement, not wait for the end of the dead incarnation's channel.
  p.from(fromArray(input(100)))
    .via(ref("holder", { failAt: 0, marker: `${dir}/marker` }), { fuse: false })
    .to(ref("slowOpenSink", { delayMs: 300, log }, "sink"));
  const running = settle(p.run());
  const late = new Promise<"timed out">((r) => timer = setTimeout(() => r("timed out"), 5000));
  const result = await Promise.race([running, late]);
  clearTimeout(timer);
  if (result === "timed out") {
    await p.stop();
    await running;
  }
  if (result instanceof Error || result === "timed out") throw new Error(`run(): ${result}`);
  assert.equal(result.stages.holder?.restarts, 1);
  assertAllOnce((await lines(log)).map(Number), 100);
  await Deno.remove(dir, { recursive: true });
});

Deno.test({
  name: "SinkOp.run() stops retrying a RetriableError once stop() is forced; nothing is acked",
  ...leakChecked,
  async fn() {
    const dir = await Deno.makeTempDir();
    const acks = `${dir}/acks`, writes = `${dir}/writes`;
    const stopTimeoutMs = 300;
    const p = pipeline({ mode: "inline", signals: false, stopTimeoutMs });
    p.from(ref("ackingSource", { count: 100, perPull: 50, log: acks }, "source"))
      .to(ref("downSink", { log: writes }, "sink"), { fuse: false });
    const running = settle(p.run());
    // Long enough for the backoff to grow past the stop timeout.
    await new Promise((r) => setTimeout(r, 1500));
    const stopping = Date.now();
    await p.stop();
    const took = Date.now() - stopping;
    const result = await running;
    assert.ok(result instanceof PipelineError, String(result));
    assert.match(result.message, /forced/);
    assert.ok(took < stopTimeoutMs + 200, `stop() took ${took} ms`);
    const attempts = (await lines(writes)).length;
    assert.ok(attempts > 1, `${attempts} write attempts`);
    await new Promise((r) => setTimeout(r, 200));
    assert.equal((await lines(writes)).length, attempts, "the sink still retries after the stop");
    assert.deepEqual(await lines(acks), []);
    await Deno.remove(dir, { recursive: true });
  },
});

for (const hook of ["beforeBatch", "process"] as const) {
  for (const mode of ["inline", "workers"] as const) {
    Deno.test(`ProcessorOp retries a RetriableError from ${hook}() until the store is back (${mode})`, async () => {
      const dead = memoryDeadLetters();
      const out = collect<Ev>();
      const summary = await pipeline({
        mode,
        signals: false,
        deadLetter: dead,
        defaults: { batchSize: 100 },
      })
        .from(fromArray(input(1000)))
        .via(ref("lookup", { hook, downMs: 300 }), { fuse: false, maxRetries: 2 })
        .to(out.sink)
        .run();
      const got = (await out.values()).map((v) => v.id);
      assert.equal(got.length, 1000, "every record arrives once");
      assertAllOnce(got, 1000);
      assert.deepEqual(dead.entries, []);
      assert.equal(summary.stages.lookup?.restarts, 0);
      assert.deepEqual(summary.failures, []);
      assert.ok((summary.stages.lookup?.failed ?? 0) > 2, "the faults are counted");
      await out.clear();
    });
  }
}

for (const hook of ["onWatermark", "onTick", "flush"] as const) {
  for (const mode of ["inline", "workers"] as const) {
    Deno.test(`ProcessorOp retries a RetriableError from ${hook}(), dropping what the attempt emitted (${mode})`, async () => {
      const dead = memoryDeadLetters();
      const out = collect<{ id: number; seen?: number; calls?: number }>();
      const count = 200;
      // Paced, so that ticks come while records still flow.
      const summary = await pipeline({ mode, signals: false, deadLetter: dead })
        .from(pacedSource(count, 20, hook === "onTick" ? 10 : 0))
        .via(ref("flakyHooks", { hook, downMs: 150 }), { fuse: false, tickMs: 10 })
        .to(out.sink)
        .run();
      const got = await out.values();
      const fired = got.filter((v) => v.id === -1);
      assert.deepEqual(got.filter((v) => v.id === -2), [], "a failed attempt's output went on");
      assert.equal(fired.length, 1, `${hook} output: ${JSON.stringify(fired)}`);
      assert.ok(fired[0]!.calls! > 2, `${fired[0]!.calls} calls: it was retried with backoff`);
      if (hook !== "onTick") assert.equal(fired[0]!.seen, count);
      assertAllOnce(got.filter((v) => v.id >= 0).map((v) => v.id), count);
      assert.equal(got.length, count + 1);
      assert.deepEqual(dead.entries, []);
      assert.equal(summary.stages.flakyHooks?.restarts, 0);
      assert.deepEqual(summary.failures, []);
      assert.equal(summary.stages.flakyHooks?.failed, fired[0]!.calls! - 1, "each fault counted");
      await out.clear();
    });
  }
}

for (const mode of ["inline", "workers"] as const) {
  Deno.test(`SinkOp retries a RetriableError from flush() until the server is back (${mode})`, async () => {
    const dir = await Deno.makeTempDir();
    const log = `${dir}/log`;
    const summary = await pipeline({ mode, signals: false })
      .from(fromArray(input(300)))
      .to(ref("flushingSink", { log, downMs: 150 }, "sink"), { permissions: { write: [dir] } })
      .run();
    const entries = await lines(log);
    const attempts = entries.filter((l) => l === "attempt").length;
    assert.ok(attempts > 2, `${attempts} flush attempts`);
    assertAllOnce(entries.filter((l) => l !== "attempt").map(Number), 300);
    assert.equal(entries.length, attempts + 300);
    assert.equal(summary.stages.flushing?.restarts, 0);
    assert.deepEqual(summary.failures, []);
    await Deno.remove(dir, { recursive: true });
  });
}

Deno.test("Pipeline.run() keeps the defaults of stage options passed as undefined", async () => {
  const out = collect<Ev>();
  const unset = {
    capacity: undefined,
    batchSize: undefined,
    lingerMs: undefined,
    parallelism: undefined,
    maxRetries: undefined,
  };
  const p = pipeline({ mode: "inline", signals: false, defaults: unset, stopTimeoutMs: 100 });
  p.from(fromArray(input(1000)), unset)
    .via(ref("lookup", { hook: "process", downMs: 0 }), { ...unset, fuse: false })
    .to(out.sink, unset);
  const running = settle(p.run());
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<"timed out">((r) => timer = setTimeout(() => r("timed out"), 5000));
  const result = await Promise.race([running, late]);
  clearTimeout(timer);
  if (result === "timed out") {
    await p.stop();
    await running;
  }
  if (result instanceof Error || result === "timed out") throw new Error(`run(): ${result}`);
  assert.equal(result.stages.lookup?.in, 1000);
  const got = (await out.values()).map((v) => v.id);
  assert.equal(got.length, 1000);
  assertAllOnce(got, 1000);
  await out.clear();
});

for (const mode of ["inline", "workers"] as const) {
  Deno.test(`A source whose pull throws RetriableError is pulled again after a backoff, not restarted (${mode})`, async () => {
    const out = collect<Ev>();
    const summary = await pipeline({ mode, signals: false })
      .from(
        ref<never, Ev>(
          "flakySource",
          { count: 1000, perPull: 50, downMs: 150, againAt: 500 },
          "source",
        ),
      )
      .to(out.sink)
      .run();
    const got = (await out.values()).map((v) => v.id);
    assertAllOnce(got, 1000);
    assert.deepEqual(got, [...got].sort((a, b) => a - b), "in order: nothing was replayed");
    assert.equal(summary.stages.flaky?.restarts, 0);
    assert.deepEqual(summary.failures, []);
    assert.ok((summary.stages.flaky?.failed ?? 0) >= 2, "the faults are counted");
    await out.clear();
  });
}

Deno.test("A source away for good is stopped during its retries: stop() ends the run", async () => {
  const out = collect<Ev>();
  const p = pipeline({ mode: "workers", signals: false, stopTimeoutMs: 2000 });
  p.from(ref<never, Ev>("flakySource", { count: 10, perPull: 5, downMs: 60_000 }, "source"))
    .to(out.sink);
  const running = p.run();
  await new Promise((r) => setTimeout(r, 300));
  const stopping = Date.now();
  await p.stop();
  const summary = await running;
  assert.ok(Date.now() - stopping < 2000, `stop() took ${Date.now() - stopping} ms`);
  assert.equal(summary.stages.flaky?.restarts, 0);
  assert.deepEqual(await out.values(), []);
  await out.clear();
});
