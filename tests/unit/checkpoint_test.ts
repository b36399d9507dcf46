import assert from "node:assert/strict";
import { type Ev, expectedSums, pacedSource, runtimeFixtures, type Sum } from "./_paced.ts";
import { within } from "./_wait.ts";
import {
  collect,
  decodeLines,
  fileSource,
  filter,
  map,
  memoryStateBackend,
  pipeline,
  stage,
} from "../../mod.ts";

const fixtures = runtimeFixtures;

function source(count: number, delayMs = 0) {
  return pacedSource(count, 100, delayMs);
}

Deno.test("A stateful stage that crashes resumes from its checkpoint: per-key sums stay exact", async () => {
  const marker = (await Deno.makeTempDir()) + "/marker";
  const state = memoryStateBackend();
  const out = collect<Sum>();
  const summary = await pipeline({ mode: "workers", signals: false, state, checkpointMs: 50 })
    .from(source(10_000, 1))
    .keyBy()
    .via(stage<Ev, Sum>(fixtures, { at: 6000, marker }, { export: "crashingSum" }), {
      name: "sum",
      permissions: { read: [marker], write: [marker] },
    })
    .to(out.sink)
    .run();
  assert.equal(summary.stages.sum?.restarts, 1, "the stage really crashed once");
  const got = Object.fromEntries((await out.values()).map((v) => [v.key, v.sum]));
  // Input acked only after a checkpoint: restored state + replayed unacked input = no loss and
  // no double counting.
  assert.deepEqual(got, expectedSums(10_000, 20));
  assert.ok(state.size > 0, "checkpoints were written to the backend");
  await out.clear();
});

Deno.test("restoreState resumes keyed state stored by an earlier run of the same pipeline", async () => {
  const state = memoryStateBackend();
  const run = async (count: number, restoreState: boolean, fuse: boolean) => {
    const out = collect<Sum>();
    await pipeline({ name: `resume-${fuse}`, mode: "inline", signals: false, state, restoreState })
      .from(source(count))
      .keyBy()
      .via(stage<Ev, Sum>(fixtures, {}, { export: "keyedSum" }), { name: "sum", fuse })
      .to(out.sink)
      .run();
    const sums = Object.fromEntries((await out.values()).map((v) => [v.key, v.sum]));
    await out.clear();
    return sums;
  };
  // Fused with its source (both at parallelism 1), the checkpoint holds the source's position
  // too: the resumed run goes on after record 999 and its sums are exactly those of 0..1499.
  assert.deepEqual(await run(1000, false, true), expectedSums(1000, 20));
  assert.deepEqual(await run(1500, true, true), expectedSums(1500, 20));
  // Apart, the source starts over on its own: the restored sums count records 0..999 twice.
  const first = await run(1000, false, false);
  assert.deepEqual(first, expectedSums(1000, 20));
  const second = await run(1000, true, false);
  const doubled = Object.fromEntries(Object.entries(first).map(([k, v]) => [k, 2 * v]));
  assert.deepEqual(second, doubled);
  const fresh = await run(1000, false, false);
  assert.deepEqual(fresh, first);
});

Deno.test("A fast source fused with a stateful stage still lets checkpoints and stop() in", async () => {
  // Nothing in this chain waits on a channel: without the task loop yielding, control messages
  // would queue until the 50 M records were all made (tens of seconds).
  for (const mode of ["inline", "workers"] as const) {
    const state = memoryStateBackend();
    const out = collect<Sum>();
    const p = pipeline({ mode, signals: false, state, checkpointMs: 50, stopTimeoutMs: 5000 });
    p.from(source(50_000_000))
      .keyBy()
      .via(stage<Ev, Sum>(fixtures, {}, { export: "keyedSum" }), { name: "sum" })
      .to(out.sink);
    const running = p.run();
    const started = Date.now();
    while (state.size === 0 && Date.now() - started < 3000) {
      await new Promise((r) => setTimeout(r, 10));
    }
    assert.ok(state.size > 0, `${mode}: a checkpoint was stored while the source ran`);
    const stopping = Date.now();
    await p.stop();
    const summary = await running;
    assert.ok(Date.now() - stopping < 2000, `${mode}: stop() took ${Date.now() - stopping} ms`);
    const pulled = summary.stages.paced?.out ?? 0;
    assert.ok(pulled > 0 && pulled < 50_000_000, `${mode}: stopped mid-stream after ${pulled}`);
    // Drained, not dropped: every record pulled reached the sum before it emitted at the end.
    const total = (await out.values()).reduce((n, v) => n + v.sum, 0);
    let expected = 0;
    for (let i = 0; i < pulled; i++) expected += i % 7;
    assert.equal(total, expected);
    await out.clear();
  }
});

Deno.test("Upstream out of credit never waits for the checkpoint timer: an idle stateful stage asks for one", async () => {
  // Batches merge on the way (a filter thins them, senders refill them), so the stateful stage
  // can hold fewer batches than its own threshold while the source's credit is all spent on
  // their lineage. Before the fix every such stall lasted until the timer: here 60 s.
  const out = collect<Sum>();
  const started = Date.now();
  await pipeline({ mode: "workers", signals: false, checkpointMs: 60_000 })
    .from(source(20_000), { fuse: false })
    .via(filter((e: Ev) => e.id % 3 === 0), { fuse: false })
    .via(map((e: Ev) => e), { fuse: false })
    .keyBy()
    .via(stage<Ev, Sum>(fixtures, {}, { export: "keyedSum" }), { name: "sum", fuse: false })
    .to(out.sink)
    .run();
  const took = Date.now() - started;
  assert.ok(took < 20_000, `took ${took} ms`);
  const sums: Record<string, number> = {};
  for (let i = 0; i < 20_000; i += 3) sums[`k${i % 20}`] = (sums[`k${i % 20}`] ?? 0) + i % 7;
  assert.deepEqual(Object.fromEntries((await out.values()).map((v) => [v.key, v.sum])), sums);
  await out.clear();
});

Deno.test("Fused with its source, keyed state survives SIGKILL mid-stream exactly: the source resumes where the checkpoint ends", async () => {
  const dir = await Deno.makeTempDir({ prefix: "sluice-fused-kill-" });
  const kv = `${dir}/state.kv`;
  const child = (out: string, delayMs: number) =>
    new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "-A",
        "--config",
        new URL("../../deno.json", import.meta.url).pathname,
        new URL("./fixtures/fused_state_child.ts", import.meta.url).pathname,
        JSON.stringify({ kv, out, count: 10_000, delayMs }),
      ],
      stdout: "null",
      stderr: "piped",
    }).spawn();
  try {
    // 1. Killed mid-stream, at no particular point: after some checkpoints were stored, with
    //    records pulled since the last one (50 per pull every 2 ms, checkpoints every 50 ms).
    const first = child(`${dir}/first.json`, 2);
    const stderr = new Response(first.stderr).text();
    const started = Date.now();
    let stored = 0;
    while (Date.now() - started < 20_000) {
      await new Promise((r) => setTimeout(r, 50));
      const store = await Deno.openKv(kv).catch(() => undefined);
      if (!store) continue;
      stored = 0;
      for await (const _ of store.list({ prefix: [] })) stored++;
      store.close();
      if (stored > 2) break;
    }
    await new Promise((r) => setTimeout(r, 137));
    first.kill("SIGKILL");
    const status = await first.status;
    await stderr;
    assert.equal(status.signal, "SIGKILL", "the first run was killed, not finished");
    assert.ok(stored > 2, "the first run stored checkpoints before it died");
    // 2. Resumed in another process: restored state + the source from its checkpointed position.
    const second = child(`${dir}/second.json`, 0);
    const err = new Response(second.stderr).text();
    assert.equal((await second.status).code, 0, await err);
    const sums = JSON.parse(await Deno.readTextFile(`${dir}/second.json`));
    // Replayed input would count twice (at-least-once); lost input would be missing.
    assert.deepEqual(sums, expectedSums(10_000, 20));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("A file source fused with a keyed sum resumes, with restoreState, right after the lines its state holds", async () => {
  const dir = await Deno.makeTempDir({ prefix: "sluice-file-resume-" });
  const path = `${dir}/in.txt`;
  const state = memoryStateBackend();
  const lines = (from: number, to: number) =>
    Array.from({ length: to - from }, (_, i) => `${from + i}\n`).join("");
  const run = async (restoreState: boolean) => {
    const out = collect<Sum>();
    await pipeline({ name: "file-resume", mode: "inline", signals: false, state, restoreState })
      .from(fileSource({ path, format: "lines", chunkBytes: 256 }))
      .via(decodeLines({ skipEmpty: true }))
      .via(map((line: string): Ev => ({ id: Number(line), n: Number(line) % 7 })))
      .keyBy((e) => `k${e.id % 20}`)
      .via(stage<Ev, Sum>(fixtures, {}, { export: "keyedSum" }), { name: "sum" })
      .to(out.sink)
      .run();
    const sums = Object.fromEntries((await out.values()).map((v) => [v.key, v.sum]));
    await out.clear();
    return sums;
  };
  try {
    await Deno.writeTextFile(path, lines(0, 1000));
    assert.deepEqual(await run(false), expectedSums(1000, 20));
    // The file grew; the resumed run reads only the new lines: sums of 0..1499, none twice.
    await Deno.writeTextFile(path, lines(1000, 1500), { append: true });
    assert.deepEqual(await run(true), expectedSums(1500, 20));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

for (const mode of ["inline", "workers"] as const) {
  Deno.test(`[${mode}] A source fused with a keyed sum asks for a checkpoint once 256 pulls wait on none, not again while one under way covers them`, async () => {
    // Before: the pulls a checkpoint under way covers still counted, so the pull right after its
    // snapshot asked for the next one, which followed it at once: two checkpoints (two barriers
    // through the pipeline, two state writes) for every one asked for.
    const memory = memoryStateBackend();
    let writes = 0;
    // Each write takes 20 ms: a checkpoint under way sees many pulls, and 256 pulls (one every
    // millisecond or two) take far longer than it.
    const state = {
      getMany: (keys: readonly string[]) => memory.getMany(keys),
      setMany: async (entries: Iterable<readonly [string, unknown]>) => {
        writes++;
        await new Promise((r) => setTimeout(r, 20));
        await memory.setMany(entries);
      },
    };
    const out = collect<Sum>();
    const pulls = 800;
    // The timer never fires: every checkpoint is one asked for, or the last ones at the end.
    await pipeline({ mode, signals: false, state, checkpointMs: 600_000 })
      .from(pacedSource(pulls * 10, 10, 1))
      .keyBy()
      .via(stage<Ev, Sum>(fixtures, {}, { export: "keyedSum" }), { name: "sum" })
      .to(out.sink)
      .run();
    assert.deepEqual(
      Object.fromEntries((await out.values()).map((v) => [v.key, v.sum])),
      expectedSums(pulls * 10, 20),
    );
    const asked = Math.floor(pulls / 256);
    // A write per checkpoint (its one instance's state), and at the end its last state, alone.
    assert.ok(writes >= asked, `${writes} writes: fewer than the ${asked} checkpoints asked for`);
    assert.ok(writes <= asked + 2, `${writes} writes for ${asked} checkpoints asked for`);
    await out.clear();
  });
}

for (const mode of ["inline", "workers"] as const) {
  Deno.test(`[${mode}] A source whose acks wait for a stateful stage's checkpoint asks for one before it runs out of room to keep batches`, async () => {
    // The source keeps what it sends until it is acked, at most 4 × capacity batches; below, a
    // filter keeps a quarter, so the keyed sum holds too few batches to ask for a checkpoint
    // itself, and its timer work (tickMs 2) keeps it from the 10 ms of idleness after which it
    // asks. Before, the source then stalled until the checkpoint timer (here 10 minutes); now it
    // asks once half that room is taken by batches no checkpoint covers.
    const out = collect<Sum>();
    const count = 40_000;
    const p = pipeline({ mode, signals: false, checkpointMs: 600_000 });
    p.from(pacedSource(count, 512), { fuse: false })
      .via(filter((e: Ev) => e.id % 4 === 0), { fuse: false })
      .keyBy()
      .via(stage<Ev, Sum>(fixtures, { ticking: true }, { export: "keyedSum" }), {
        name: "sum",
        tickMs: 2,
      })
      .to(out.sink);
    const running = p.run();
    const ended = await within(running, 20_000);
    if (ended === "timed out") {
      await p.stop().catch(() => {});
      await running.catch(() => {});
      assert.fail("the run stalled: no checkpoint came to ack the source's batches");
    }
    const want: Record<string, number> = {};
    for (let id = 0; id < count; id += 4) want[`k${id % 20}`] = (want[`k${id % 20}`] ?? 0) + id % 7;
    assert.deepEqual(Object.fromEntries((await out.values()).map((v) => [v.key, v.sum])), want);
    await out.clear();
  });
}
