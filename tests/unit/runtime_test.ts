import assert from "node:assert/strict";
import {
  collect,
  ConfigError,
  type DeadLetter,
  fromArray,
  memoryDeadLetters,
  pipeline,
  PipelineError,
  type StreamRecord,
} from "../../mod.ts";
import { fixtureRef } from "./_fixture_ref.ts";
import { release } from "./fixtures/_hang.ts";

const ref = fixtureRef(new URL("./fixtures/runtime_stages.ts", import.meta.url));

type Ev = { id: number; n: number };

function paced(count: number, opts: { keys?: number; perPull?: number; delayMs?: number } = {}) {
  return ref<never, Ev>("pacedSource", {
    count,
    keys: opts.keys ?? 10,
    perPull: opts.perPull ?? 100,
    delayMs: opts.delayMs ?? 0,
  }, "source");
}

async function readNdjson<T>(path: string): Promise<StreamRecord<T>[]> {
  const text = await Deno.readTextFile(path).catch(() => "");
  return text.split("\n").filter(Boolean).map((l) => JSON.parse(l));
}

function ids(records: StreamRecord<Ev>[]): number[] {
  return records.map((r) => r.value.id);
}

function assertAllOnce(got: number[], count: number): void {
  const distinct = new Set(got);
  assert.equal(distinct.size, count, `expected ${count} distinct ids, got ${distinct.size}`);
  for (let i = 0; i < count; i++) assert.ok(distinct.has(i), `id ${i} missing`);
}

Deno.test("Pipeline.run() in workers and inline modes gives the same output", async () => {
  const results: number[][] = [];
  for (const mode of ["inline", "workers"] as const) {
    const out = collect<Ev>();
    await pipeline({ mode, signals: false })
      .from(paced(5000))
      .via(ref("poisonous", {}), { fuse: false, parallelism: 2 })
      .to(out.sink)
      .run();
    results.push((await out.values()).map((v) => v.id).sort((a, b) => a - b));
    await out.clear();
  }
  assert.deepEqual(results[0], results[1]);
  assertAllOnce(results[0]!, 5000);
});

Deno.test("Operator fusion does not change output: fused and unfused chains agree", async () => {
  const results: number[][] = [];
  for (const fuse of [true, false]) {
    const out = collect<Ev>();
    const summary = await pipeline({ mode: "workers", signals: false })
      .from(paced(3000))
      .via(ref("poisonous", {}), { fuse })
      .via(ref("poisonous", {}), { fuse, name: "second" })
      .to(out.sink, { fuse })
      .run();
    assert.equal(summary.stages.second?.in, 3000);
    results.push((await out.values()).map((v) => v.id));
    await out.clear();
  }
  // Fused or not, a single instance per stage keeps the source's order.
  assert.deepEqual(results[0], results[1]);
  assert.deepEqual(results[0], Array.from({ length: 3000 }, (_, i) => i));
});

Deno.test("Channel backpressure: a slow sink bounds records in flight and memory", async () => {
  const path = await Deno.makeTempFile();
  const batchSize = 100, capacity = 4, heartbeatMs = 20, delayMs = 10;
  const p = pipeline({
    mode: "workers",
    signals: false,
    heartbeatMs,
    defaults: { batchSize, capacity },
  });
  p.from(paced(20_000, { perPull: 100 }))
    .via(ref("poisonous", {}), { fuse: false })
    .to(ref("slowSink", { path, delayMs }, "sink"), { permissions: { write: [path] } });
  const run = p.run();
  let maxInFlight = 0;
  // Memory is measured from once the workers are up (each costs tens of MiB to start): it must
  // stay flat from then on, while the source is held back.
  const started = Date.now();
  let rss0 = 0, rssMax = 0;
  const timer = setInterval(() => {
    const c = p.counters();
    const produced = c.paced?.instances[0]?.out ?? 0;
    const written = c.slow?.instances[0]?.in ?? 0;
    maxInFlight = Math.max(maxInFlight, produced - written);
    if (Date.now() - started < 300) return;
    const rss = Deno.memoryUsage().rss;
    rss0 ||= rss;
    rssMax = Math.max(rssMax, rss);
  }, 20);
  // Stop once the sink has had time to show it is the bottleneck.
  await new Promise((r) => setTimeout(r, 1500));
  const c = p.counters();
  const produced = c.paced?.instances[0]?.out ?? 0;
  await p.stop();
  await run;
  clearInterval(timer);
  // Two edges, each with `capacity` batches in the receiver's mailbox plus one sealed and one open
  // batch at the sender; the batch the sink is writing; and what the sink writes between two of
  // the workers' counter reports (each reports on its own heartbeat; on a busy host a report can
  // come a period late).
  const skew = Math.ceil((2 * heartbeatMs) / delayMs) * batchSize;
  const bound = 2 * (capacity + 2) * batchSize + batchSize + skew;
  assert.ok(maxInFlight > 0, "the sink should lag");
  assert.ok(maxInFlight <= bound, `in flight ${maxInFlight} exceeds ${bound}`);
  assert.ok(produced < 20_000, `the source should have been held back, produced ${produced}`);
  assert.ok(rss0 > 0, "memory was sampled");
  assert.ok(rssMax - rss0 < 64 * 1024 * 1024, `rss grew by ${(rssMax - rss0) >> 20} MiB`);
  const written = await readNdjson<Ev>(path);
  assertAllOnce(ids(written), new Set(ids(written)).size);
  await Deno.remove(path);
});

for (const how of ["throw", "close"] as const) {
  Deno.test(`Supervisor restarts an instance that fails (${how}) with no record lost`, async () => {
    const marker = (await Deno.makeTempDir()) + "/marker";
    const out = collect<Ev>();
    const summary = await pipeline({ mode: "workers", signals: false, heartbeatMs: 100 })
      .from(paced(5000, { perPull: 50 }))
      .via(ref("faulty", { at: 2500, marker, how }), {
        fuse: false,
        permissions: { write: [marker], read: [marker] },
      })
      .to(out.sink)
      .run();
    const got = (await out.values()).map((v) => v.id);
    assertAllOnce(got, 5000);
    assert.equal(summary.stages.faulty?.restarts, 1);
    // Duplicates only from the replay of unacked batches: bounded by the channel's capacity.
    assert.ok(got.length - 5000 <= 8 * 512, `too many duplicates: ${got.length - 5000}`);
    await out.clear();
  });
}

Deno.test("Supervisor escalates when restart intensity is exceeded and run() names the stage", async () => {
  const marker = (await Deno.makeTempDir()) + "/marker";
  const out = collect<Ev>();
  const p = pipeline({ mode: "workers", signals: false, name: "intense" })
    .from(paced(1000))
    .via(ref("faulty", { at: 10, marker, how: "always" }), {
      fuse: false,
      maxRestarts: 2,
      withinMs: 10_000,
    })
    .to(out.sink);
  await assert.rejects(() => p.run(), (e: unknown) => {
    assert.ok(e instanceof PipelineError);
    assert.match(e.message, /stage "faulty" instance 0/);
    assert.match(e.message, /boom at 10/);
    assert.equal(e.site.stage, "faulty");
    return true;
  });
  await out.clear();
});

Deno.test("Supervisor replaces a hung worker within two heartbeat intervals", async () => {
  const marker = (await Deno.makeTempDir()) + "/marker";
  const out = collect<Ev>();
  const heartbeatMs = 200;
  let hungAt = NaN;
  const summary = await pipeline({ mode: "workers", signals: false, heartbeatMs })
    .from(paced(3000, { perPull: 50 }))
    .via(ref("faulty", { at: 1500, marker, how: "hang" }), {
      fuse: false,
      permissions: { write: [marker], read: [marker] },
    })
    .to(out.sink)
    .run()
    .finally(async () => hungAt = await release(marker));
  assertAllOnce((await out.values()).map((v) => v.id), 3000);
  assert.equal(summary.stages.faulty?.restarts, 1);
  const failure = summary.failures[0]!;
  assert.equal(failure.code, "E_HEARTBEAT", failure.message);
  // Two missed periods, plus the supervisor's check granularity (a quarter period) and slack.
  const detectedAfter = failure.at - hungAt;
  assert.ok(detectedAfter <= 2.25 * heartbeatMs + 60, `detected after ${detectedAfter} ms`);
  await out.clear();
});

Deno.test("Poison records are retried, then dead-lettered with the reason; the stream goes on", async () => {
  for (const mode of ["inline", "workers"] as const) {
    const dead = memoryDeadLetters();
    const out = collect<{ id: number; poison?: boolean }>();
    const input = Array.from(
      { length: 100 },
      (_, id) => ({ value: { id, poison: id % 25 === 3 }, ts: id }),
    );
    const summary = await pipeline({ mode, signals: false, deadLetter: dead })
      .from(fromArray(input))
      .via(ref("poisonous", {}), { maxRetries: 2, fuse: false })
      .to(out.sink)
      .run();
    assert.equal((await out.values()).length, 96);
    const entries: DeadLetter[] = dead.entries;
    assert.deepEqual(
      entries.map((e) => (e.record.value as { id: number }).id).sort((a, b) => a - b),
      [3, 28, 53, 78],
    );
    for (const e of entries) {
      assert.equal(e.stage, "poisonous");
      assert.equal(e.attempts, 3);
      assert.match(e.error.message, /poison record/);
    }
    assert.equal(summary.stages.poisonous?.failed, 12);
    await out.clear();
  }
});

Deno.test("Pipeline.scale() moves keyed state: 1 → 3 → 2 gives the same per-key sums as inline", async () => {
  const count = 20_000;
  const run = async (mode: "inline" | "workers", scale: boolean) => {
    const out = collect<{ key: string; sum: number }>();
    const p = pipeline({ mode, signals: false });
    p.from(paced(count, { keys: 50, perPull: 200, delayMs: scale ? 5 : 0 }))
      .keyBy()
      // Not fused with the source at parallelism 1: a fused stage cannot be rescaled.
      .via(ref("keyedSum", {}), { name: "sum", fuse: false })
      .to(out.sink);
    const running = p.run();
    if (scale) {
      await new Promise((r) => setTimeout(r, 150));
      await p.scale("sum", 3);
      await new Promise((r) => setTimeout(r, 150));
      await p.scale("sum", 2);
    }
    await running;
    if (scale) {
      // Instance 1 exists only after the first rescale: records reached it, so they flowed meanwhile.
      const instances = p.counters().sum?.instances ?? [];
      assert.equal(instances.length, 2);
      assert.ok(instances.every((c) => c.in > 0), "both final instances processed records");
    }
    const sums = Object.fromEntries((await out.values()).map((v) => [v.key, v.sum]));
    await out.clear();
    return sums;
  };
  const expected = await run("inline", false);
  assert.equal(Object.keys(expected).length, 50);
  const scaled = await run("workers", true);
  assert.deepEqual(scaled, expected);
});

Deno.test("A keyed stage fused with its source at parallelism 1 runs in one worker, and scale() says how to keep it apart", async () => {
  const out = collect<{ key: string; sum: number }>();
  const p = pipeline({ mode: "workers", signals: false });
  p.from(paced(20_000, { keys: 50, perPull: 200, delayMs: 2 }))
    .keyBy()
    .via(ref("keyedSum", {}), { name: "sum" })
    .to(out.sink);
  const running = p.run();
  await new Promise((r) => setTimeout(r, 100));
  await assert.rejects(
    () => p.scale("sum", 2),
    (e: unknown) => {
      assert.ok(e instanceof RangeError);
      assert.match(e.message, /Cannot scale "sum": it runs fused with "paced", "collect"/);
      assert.match(e.message, /give it \{ fuse: false \} to rescale it/);
      return true;
    },
  );
  const summary = await running;
  // One worker did it all: the keyed stage and the sink counted what the source made.
  assert.equal(summary.stages.sum?.in, 20_000);
  let expected = 0;
  for (let i = 0; i < 20_000; i++) expected += i % 7;
  assert.equal((await out.values()).reduce((n, v) => n + v.sum, 0), expected);
  await out.clear();
});

Deno.test("A stage that cannot open for lack of a permission fails the run at once, without restarts", async () => {
  const out = collect();
  const p = pipeline({ mode: "workers", signals: false })
    .from(paced(100))
    .via(ref("needsEnv", {}), { fuse: false, maxRestarts: 5 })
    .to(out.sink);
  await assert.rejects(() => p.run(), (e: unknown) => {
    assert.ok(e instanceof PipelineError);
    assert.match(e.message, /stage "needsEnv" instance 0 could not start; cause NotCapable/);
    return true;
  });
  assert.equal(p.counters().needsEnv?.restarts, 0);
  await out.clear();
});

Deno.test("A stateful stage at parallelism > 1 needs keyed input: build and scale() say so", async () => {
  // Built so: two instances would keep (and checkpoint) state under the same partitions.
  const p = pipeline({ mode: "inline", signals: false });
  p.from(paced(100)).via(ref("keyedSum", {}), { name: "sum", parallelism: 2 }).to(collect().sink);
  await assert.rejects(() => p.run(), (e: unknown) => {
    assert.ok(e instanceof ConfigError);
    assert.match(e.message, /stage "sum" at parallelism 2: it keeps keyed state/);
    assert.match(e.message, /put \.keyBy\(\) before it/);
    return true;
  });
  // Scaled to it at run time, the same.
  const out = collect<{ key: string; sum: number }>();
  const q = pipeline({ mode: "workers", signals: false });
  q.from(paced(5000, { keys: 10, perPull: 100, delayMs: 2 }))
    .via(ref("keyedSum", {}), { name: "sum", fuse: false })
    .to(out.sink);
  const running = q.run();
  await new Promise((r) => setTimeout(r, 100));
  await assert.rejects(() => q.scale("sum", 2), /Cannot run stage "sum" at parallelism 2/);
  const summary = await running;
  assert.equal(summary.stages.sum?.in, 5000, "the pipeline went on at parallelism 1");
  await out.clear();
  // Keyed, it builds and scales.
  const keyed = pipeline({ mode: "inline", signals: false });
  const sums = collect<{ key: string; sum: number }>();
  keyed.from(paced(100, { keys: 10 })).keyBy()
    .via(ref("keyedSum", {}), { name: "sum", parallelism: 2 }).to(sums.sink);
  assert.equal((await keyed.run()).stages.sum?.in, 100);
  await sums.clear();
});
