// Review of 8de4f48 and e179863: a Sender packs a batch on its first send and keeps only the packed
// form for replays; a receiver that passes records on frees the credit with "f" and the sender
// keeps the batch (at most RETAIN × capacity) until the ack.
import assert from "node:assert/strict";
import { RETAIN, Sender } from "../../actors/_sender.ts";
import { Token } from "../../actors/_token.ts";
import { unpack } from "../../actors/_wire.ts";
import type { ToReceiver } from "../../actors/_protocol.ts";
import type { StreamRecord } from "../../actors/record.ts";

const settle = () => new Promise((r) => setTimeout(r, 10));

function rec(i: number): StreamRecord<unknown> {
  return {
    key: `k${i % 2}`,
    value: {
      id: i,
      sku: `sku-${i % 2}`,
      at: new Date(1000 + i),
      tags: ["a", i],
      nested: { n: -0 },
    },
    ts: 1000 + i,
  };
}

/** Collects the batches a port receives, unpacked as a receiver unpacks them. */
function receiver(port: MessagePort): Map<number, unknown[]>[] {
  const rounds: Map<number, unknown[]>[] = [new Map()];
  port.onmessage = (e: MessageEvent<ToReceiver>) => {
    if (e.data.t === "b") rounds.at(-1)!.set(e.data.seq, unpack(e.data.records));
  };
  return rounds;
}

Deno.test("Sender.reconnect() replays a kept (packed) batch as the records first sent, on every reconnect", async () => {
  const { port1, port2 } = new MessageChannel();
  const first = receiver(port2);
  const sender = new Sender(port1, 2, 3, 1000);
  const records = Array.from({ length: 6 }, (_, i) => rec(i));
  const expected = structuredClone(records);
  const token = new Token(() => {});
  for (const r of records) sender.push(r, token);
  await settle();
  assert.deepEqual([...first[0]!.keys()], [1, 2]);
  port2.postMessage({ t: "f", seq: 1 }); // processed, kept for a replay
  await settle();
  const ports = [port2];
  for (let round = 0; round < 3; round++) {
    const fresh = new MessageChannel();
    const got = receiver(fresh.port2);
    ports.push(fresh.port2);
    sender.reconnect(fresh.port1);
    await settle();
    assert.deepEqual([...got[0]!.keys()], [1, 2], `round ${round}`);
    assert.deepEqual([...got[0]!.values()].flat(), expected, `round ${round}`);
  }
  assert.deepEqual([...first[0]!.values()].flat(), expected);
  assert.equal(sender.held, 6);
  sender.close();
  for (const p of ports) p.close();
});

Deno.test("Sender keeps at most RETAIN × capacity batches unacked while every batch is freed with 'f' at once", async () => {
  const { port1, port2 } = new MessageChannel();
  const capacity = 2, batchSize = 4, count = 200;
  const sent: number[] = [];
  port2.onmessage = (e: MessageEvent<ToReceiver>) => {
    if (e.data.t !== "b") return;
    sent.push(e.data.seq);
    port2.postMessage({ t: "f", seq: e.data.seq });
  };
  const sender = new Sender(port1, capacity, batchSize, 1000);
  const token = new Token(() => {});
  for (let i = 0; i < count; i++) sender.push(rec(i), token);
  for (let k = 0; k < 5; k++) await settle();
  assert.equal(sent.length, RETAIN * capacity);
  assert.equal(sender.inFlight, RETAIN * capacity);
  assert.equal(sender.credits, 0);
  assert.equal(sender.held, count);
  assert.equal(sender.sent, RETAIN * capacity * batchSize);
  // Acks let it go on, never past the bound.
  let max = 0;
  for (let seq = 1; seq <= count / batchSize; seq++) {
    sender.ack(seq);
    max = Math.max(max, sender.inFlight);
    await new Promise((r) => setTimeout(r, 0));
  }
  await settle();
  assert.ok(max <= RETAIN * capacity, `${max} unacked`);
  assert.equal(sent.length, count / batchSize);
  assert.equal(sender.held, 0);
  await sender.drained();
  sender.close();
  port2.close();
});
