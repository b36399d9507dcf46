// Review of cd4c49a (a stateful receiver frees a batch's credit once processed, "f"; the sender
// keeps at most RETAIN × capacity unacked batches for a replay).
import assert from "node:assert/strict";
import {
  askedCheckpoints,
  type Ev,
  expectedSums,
  pacedSource,
  runtimeFixtures,
  type Sum,
} from "./_paced.ts";
import { collect, map, pipeline, stage } from "../../mod.ts";
import { RETAIN, Sender } from "../../actors/_sender.ts";
import { Token } from "../../actors/_token.ts";
import type { ToReceiver } from "../../actors/_protocol.ts";

const fixtures = runtimeFixtures;

function source(count: number, delayMs = 0) {
  return pacedSource(count, 50, delayMs);
}

const settle = () => new Promise((r) => setTimeout(r, 10));

Deno.test("Sender.reconnect() replays kept batches in seq order across acked gaps; only the new port's 'f' frees credit", async () => {
  const { port1, port2 } = new MessageChannel();
  port2.onmessage = () => {};
  const capacity = 2;
  const sender = new Sender(port1, capacity, 1, 1000);
  const token = new Token(() => {});
  for (let i = 0; i < 12; i++) sender.push({ value: i, ts: i }, token);
  await settle();
  // Processed 1..8 (credit back each time), then a checkpoint acks 1..3 and 5 (4 stays).
  for (let seq = 1; seq <= RETAIN * capacity; seq++) {
    port2.postMessage({ t: "f", seq });
    await settle();
  }
  for (const seq of [1, 2, 3, 5]) sender.ack(seq);
  await settle();
  const fresh = new MessageChannel();
  const replayed: number[] = [];
  fresh.port2.onmessage = (e: MessageEvent<ToReceiver>) => {
    if (e.data.t === "b") replayed.push(e.data.seq);
  };
  const kept = sender.inFlight;
  sender.reconnect(fresh.port1);
  await settle();
  // What the new incarnation's mailbox holds, first; none of it counts as processed by it.
  assert.equal(replayed.length, capacity);
  assert.equal(replayed[0], 4);
  assert.equal(sender.credits, 0);
  // A late "f" on the old port is not heard; the new incarnation's are, and the replay goes on.
  port2.postMessage({ t: "f", seq: replayed.at(-1)! });
  await settle();
  assert.equal(replayed.length, capacity);
  for (let k = 0; k < replayed.length && k < 40; k++) {
    fresh.port2.postMessage({ t: "f", seq: replayed[k] });
    await settle();
  }
  // Everything kept, in order, 5 (acked) left out; then new batches.
  const kept4on = replayed.slice(0, kept);
  assert.deepEqual(kept4on, [...kept4on].sort((a, b) => a - b));
  assert.ok(!kept4on.includes(5));
  assert.ok(sender.credits >= 0);
  assert.ok(sender.inFlight <= RETAIN * capacity);
  sender.close();
  port2.close();
  fresh.port2.close();
});

Deno.test("A stateful stage with capacity 1 behind a stateless hop that crashes once keeps exact sums, with no timed checkpoint", async () => {
  const marker = (await Deno.makeTempDir()) + "/marker";
  const out = collect<Sum>();
  const started = Date.now();
  const summary = await askedCheckpoints({ batchSize: 16, capacity: 1 })
    .from(source(6000), { fuse: false })
    .via(map((e: Ev) => e), { fuse: false })
    .keyBy()
    .via(stage<Ev, Sum>(fixtures, { at: 3500, marker }, { export: "crashingSum" }), {
      name: "sum",
      fuse: false,
      permissions: { read: [marker], write: [marker] },
    })
    .to(out.sink)
    .run();
  assert.ok(Date.now() - started < 15_000, `took ${Date.now() - started} ms`);
  assert.equal(summary.stages.sum?.restarts, 1, "the stage really crashed once");
  const got = Object.fromEntries((await out.values()).map((v) => [v.key, v.sum]));
  assert.deepEqual(got, expectedSums(6000, 20));
  await out.clear();
});

Deno.test("Pipeline.scale() with capacity 2 moves keyed state exactly while batches are kept for replay", async () => {
  const count = 8000;
  const out = collect<Sum>();
  const p = pipeline({
    mode: "workers",
    signals: false,
    checkpointMs: 60_000,
    defaults: { batchSize: 16, capacity: 2 },
  });
  p.from(source(count, 2), { fuse: false })
    .keyBy()
    .via(stage<Ev, Sum>(fixtures, {}, { export: "keyedSum" }), { name: "sum", fuse: false })
    .to(out.sink);
  const running = p.run();
  await new Promise((r) => setTimeout(r, 100));
  await p.scale("sum", 3);
  await new Promise((r) => setTimeout(r, 100));
  await p.scale("sum", 2);
  await running;
  const got = Object.fromEntries((await out.values()).map((v) => [v.key, v.sum]));
  assert.deepEqual(got, expectedSums(count, 20));
  await out.clear();
});

Deno.test("An aligned stateful stage with capacity 1 that crashes once keeps exact sums (parked input holds credit, processed input does not)", async () => {
  const align = new URL("./fixtures/alignment_stages.ts", import.meta.url);
  const counts = [2000, 2000];
  const expected: Record<string, number> = {};
  counts.forEach((count, src) => {
    for (let seq = 0; seq < count; seq++) {
      expected[`k${seq % 10}`] = (expected[`k${seq % 10}`] ?? 0) + (seq * (src + 1)) % 7;
    }
  });
  const marker = (await Deno.makeTempDir()) + "/marker";
  const out = collect<Sum>();
  const started = Date.now();
  const summary = await askedCheckpoints({ batchSize: 20, capacity: 1 })
    .from(
      stage<never, Ev>(align, {
        counts,
        delaysMs: [5, 0],
        stallsMs: [],
        stepsMs: [],
        perPull: 20,
        keys: 10,
      }, { kind: "source", export: "skewedSource" }),
      { parallelism: 2 },
    )
    .keyBy()
    .via(stage<Ev, Sum>(fixtures, { at: 1_001_200, marker }, { export: "crashingSum" }), {
      name: "sum",
      align: { maxDriftMs: 100 },
      permissions: { read: [marker], write: [marker] },
    })
    .to(out.sink)
    .run();
  assert.ok(Date.now() - started < 15_000, `took ${Date.now() - started} ms`);
  assert.equal(summary.stages.sum?.restarts, 1, "the stage really crashed once");
  const got = Object.fromEntries((await out.values()).map((v) => [v.key, v.sum]));
  assert.deepEqual(got, expected);
  await out.clear();
});
