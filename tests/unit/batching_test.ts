// How records are grouped into batches on their way: a channel's sender around watermarks, and a
// sink fused behind a stage, which gathers that stage's piecemeal output into fewer writes.
import assert from "node:assert/strict";
import { RETAIN, Sender } from "../../actors/_sender.ts";
import { Context, SinkOp, type TaskServices } from "../../actors/_ops.ts";
import { Token } from "../../actors/_token.ts";
import { unpack } from "../../actors/_wire.ts";
import type { DeadLetter, StageSpec, ToReceiver } from "../../actors/_protocol.ts";
import type { StreamRecord } from "../../mod.ts";

const rec = (ts: number): StreamRecord<number> => ({ value: ts, ts });

/** A sender on a fresh channel, and what its receiver got so far. */
function channel(batchSize: number) {
  const { port1, port2 } = new MessageChannel();
  const got: ToReceiver[] = [];
  port2.onmessage = (e: MessageEvent<ToReceiver>) => got.push(e.data);
  const sender = new Sender(port1, 8, batchSize, 1000);
  return {
    sender,
    got,
    /** Lets posted messages arrive. */
    settle: () => new Promise((r) => setTimeout(r, 10)),
    close() {
      sender.close();
      port2.close();
    },
  };
}

/** Batches as [record ts…, watermark riding on it]. */
function batches(got: ToReceiver[]): [number[], number | undefined][] {
  return got.flatMap((m) =>
    m.t === "b"
      ? [[
        (unpack(m.records) as StreamRecord<number>[]).map((r) => r.ts),
        m.wm,
      ] as [number[], number | undefined]]
      : []
  );
}

Deno.test("A record at or past a pending watermark joins its batch; the watermark rides at the end", async () => {
  const c = channel(100);
  try {
    const token = new Token();
    c.sender.push(rec(10), token);
    c.sender.watermark(15);
    c.sender.push(rec(15), token); // not late: it changes nothing the watermark decides
    c.sender.push(rec(40), token);
    c.sender.seal();
    await c.settle();
    assert.deepEqual(batches(c.got), [[[10, 15, 40], 15]]);
  } finally {
    c.close();
  }
});

Deno.test("A late record after a pending watermark starts the next batch, behind the watermark", async () => {
  const c = channel(100);
  try {
    const token = new Token();
    c.sender.push(rec(10), token);
    c.sender.watermark(20);
    c.sender.push(rec(25), token);
    c.sender.push(rec(19), token); // late: it must reach the receiver after watermark 20
    c.sender.push(rec(30), token);
    c.sender.seal();
    await c.settle();
    assert.deepEqual(batches(c.got), [[[10, 25], 20], [[19, 30], undefined]]);
  } finally {
    c.close();
  }
});

// A sink driven by hand, as a task drives one fused behind a processor.

interface Written {
  writes: number[][];
  dead: DeadLetter[];
  released: string[];
}

function sinkOp(coalesce: number, failOn = -1): { op: SinkOp; seen: Written } {
  const seen: Written = { writes: [], dead: [], released: [] };
  const abort = new AbortController();
  const services: TaskServices = {
    instance: 0,
    parallelism: 1,
    partitions: 1,
    batchSize: 512,
    signal: abort.signal,
    watermark: () => -Infinity,
    deadLetter: (entries: DeadLetter[]) => void seen.dead.push(...entries),
    side: () => false,
    beat: () => {},
    hookToken: () => new Token(),
  };
  const spec: StageSpec = {
    stage: "out",
    kind: "sink",
    module: "",
    export: "",
    config: {},
    maxRetries: 0,
    tickMs: 100,
  };
  const hooks = {
    write(records: StreamRecord<number>[]) {
      if (records.some((r) => r.value === failOn)) throw new Error(`Cannot write ${failOn}`);
      seen.writes.push(records.map((r) => r.value));
    },
  };
  const op = new SinkOp(spec, services, new Context("out", services), hooks as never);
  op.coalesce = coalesce;
  return { op, seen };
}

/** A token for one input batch, as a task makes it: released by its caller after `run`. */
function input(name: string, seen: Written): Token {
  return new Token(() => seen.released.push(name));
}

Deno.test("A fused sink gathers small batches into one write and acks each input once written", async () => {
  const { op, seen } = sinkOp(4);
  const runs: [string, number[]][] = [["a", [1]], ["b", [2, 3]], ["c", [4, 5]], ["d", [6]]];
  for (const [name, values] of runs) {
    const token = input(name, seen);
    await op.run(values.map(rec), token);
    token.release();
    // a and b are held (3 records < 4): not written, not acked.
    if (name === "b") assert.deepEqual([seen.writes, seen.released], [[], []]);
  }
  // c brought it to 5 ≥ 4: a, b and c went out in one write, and are acked; d waits.
  assert.deepEqual(seen.writes, [[1, 2, 3, 4, 5]]);
  assert.deepEqual(seen.released, ["a", "b", "c"]);
  await op.flush(); // the end of input (or the task running out of work) drains the rest
  assert.deepEqual(seen.writes, [[1, 2, 3, 4, 5], [6]]);
  assert.deepEqual(seen.released, ["a", "b", "c", "d"]);
  assert.equal(op.counters.in, 6);
  assert.equal(op.counters.out, 6);
});

Deno.test("A gathered write that fails isolates the bad record: it alone is dead-lettered", async () => {
  const { op, seen } = sinkOp(10, 3);
  for (const [name, values] of [["a", [1, 2]], ["b", [3, 4]]] as const) {
    const token = input(name, seen);
    await op.run(values.map(rec), token);
    token.release();
  }
  await op.drain();
  assert.deepEqual(seen.writes, [[1], [2], [4]]);
  assert.deepEqual(seen.dead.map((d) => [d.record.value, d.error.message]), [[
    3,
    "Cannot write 3",
  ]]);
  assert.deepEqual(seen.released, ["a", "b"]);
});

Deno.test("An unfused sink (coalesce 0) writes each batch as it comes", async () => {
  const { op, seen } = sinkOp(0);
  const token = input("a", seen);
  await op.run([rec(1)], token);
  token.release();
  assert.deepEqual([seen.writes, seen.released], [[[1]], ["a"]]);
});

Deno.test("A batch processed but held for a checkpoint frees its credit; the sender keeps at most RETAIN × capacity for a replay", async () => {
  const { port1, port2 } = new MessageChannel();
  const got: number[] = [];
  port2.onmessage = (e: MessageEvent<ToReceiver>) => {
    if (e.data.t === "b") got.push(e.data.seq);
  };
  const capacity = 2;
  const sender = new Sender(port1, capacity, 1, 1000);
  const settle = () => new Promise((r) => setTimeout(r, 10));
  const token = new Token(() => {});
  for (let i = 0; i < 20; i++) sender.push(rec(i), token);
  await settle();
  // A full mailbox: no more until the receiver says it processed some.
  assert.deepEqual(got, [1, 2]);
  assert.equal(sender.credits, 0);
  // Processed, held for a checkpoint (as a stateful receiver does): credits come back, and the
  // sender goes on until it keeps RETAIN × capacity batches.
  for (let seq = 1; got.length < 20 && seq <= got.length; seq++) {
    port2.postMessage({ t: "f", seq });
    await settle();
  }
  assert.equal(got.length, RETAIN * capacity);
  assert.equal(sender.inFlight, RETAIN * capacity);
  assert.equal(sender.credits, 0);
  // A duplicate "processed" changes nothing; an ack frees a place to keep.
  port2.postMessage({ t: "f", seq: 1 });
  port2.postMessage({ t: "a", seq: 1 });
  await settle();
  assert.equal(got.length, RETAIN * capacity + 1);
  // A restarted receiver gets every batch kept, processed or not, in order, and none of them
  // counts as processed any more: no more at a time than its mailbox holds.
  const fresh = new MessageChannel();
  const replayed: number[] = [];
  fresh.port2.onmessage = (e: MessageEvent<ToReceiver>) => {
    if (e.data.t === "b") replayed.push(e.data.seq);
  };
  sender.reconnect(fresh.port1);
  await settle();
  assert.deepEqual(replayed, got.slice(1, 1 + capacity));
  assert.equal(sender.credits, 0);
  for (let k = 0; k < replayed.length && k < 40; k++) {
    fresh.port2.postMessage({ t: "f", seq: replayed[k] });
    await settle();
  }
  assert.deepEqual(replayed.slice(0, got.length - 1), got.slice(1));
  sender.close();
  port2.close();
  fresh.port2.close();
});

Deno.test("A paced replay keeps watermarks and the end behind every replayed batch", async () => {
  const { port1, port2 } = new MessageChannel();
  port2.onmessage = () => {};
  const settle = () => new Promise((r) => setTimeout(r, 10));
  const sender = new Sender(port1, 2, 1, 1000);
  const token = new Token(() => {});
  for (let i = 1; i <= 3; i++) sender.push(rec(i), token);
  await settle();
  for (const seq of [1, 2]) port2.postMessage({ t: "f", seq });
  await settle();
  sender.watermark(10); // sent alone: nothing is open or queued
  await settle();
  const fresh = new MessageChannel();
  const seen: string[] = [];
  fresh.port2.onmessage = (e: MessageEvent<ToReceiver>) => {
    const m = e.data;
    seen.push(m.t === "b" ? `b${m.seq}` : m.t === "w" ? `w${m.wm}` : m.t);
  };
  sender.reconnect(fresh.port1);
  sender.watermark(11); // comes while the replay waits for room
  await settle();
  assert.deepEqual(seen, ["b1", "b2"]);
  fresh.port2.postMessage({ t: "f", seq: 1 });
  await settle();
  assert.deepEqual(seen, ["b1", "b2", "b3", "w10", "w11"]);
  // Ended meanwhile: the end goes last.
  sender.end();
  await settle();
  assert.deepEqual(seen.slice(5), ["eos"]);
  sender.close();
  port2.close();
  fresh.port2.close();
});
