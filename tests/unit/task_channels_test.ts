// A task's input channels under control messages that cross: a rescale down then up again sends
// the stage below `dropIn` for the retired instance, then `connectIn` for the new one in the same
// slot. `dropIn` is run as queued work, `connectIn` at once, so the new channel may already be
// there when the drop runs: only the retired incarnation's channel may go.
import assert from "node:assert/strict";
import type { FromTask, TaskInit } from "../../actors/_protocol.ts";
import { OutEdge } from "../../actors/_output.ts";
import { Sender } from "../../actors/_sender.ts";
import { Task } from "../../actors/_task.ts";
import { Token } from "../../actors/_token.ts";
import { runtimeFixtures } from "./_paced.ts";
import { sleep, until } from "./_wait.ts";

Deno.test("Task: dropIn of a retired sender, then connectIn of the new one in its slot, at once: the new channel stays (was a bug)", async () => {
  const dir = await Deno.makeTempDir({ prefix: "sluice-task-channels-" });
  const posted: FromTask[] = [];
  const task = new Task({ postMessage: (m) => posted.push(m) });
  const zero = new MessageChannel(), retired = new MessageChannel(), fresh = new MessageChannel();
  const init: TaskInit = {
    t: "init",
    task: "out",
    instance: 0,
    parallelism: 1,
    partitions: 64,
    owned: [],
    chain: [{
      stage: "out",
      kind: "sink",
      module: runtimeFixtures.href,
      export: "slowSink",
      config: { path: `${dir}/out.ndjson`, delayMs: 0 },
      maxRetries: 0,
      tickMs: 1000,
    }],
    inputs: [
      { edge: "e", from: 0, port: zero.port2, watermark: -Infinity, sender: 5 },
      { edge: "e", from: 1, port: retired.port2, watermark: -Infinity, sender: 10 },
    ],
    outputs: [],
    heartbeatMs: 60_000,
    idleTimeoutMs: 60_000,
    closeTimeoutMs: 1000,
    pending: [],
    capacity: 8,
  };
  const senders: Sender[] = [];
  try {
    task.handle(init);
    await until(() => posted.some((m) => m.t === "ready"), 5000, "ready");
    // Slot 1 retired (incarnation 10), then filled again (incarnation 11), in one go.
    task.handle({ t: "dropIn", edge: "e", from: 1, sender: 10 });
    task.handle({
      t: "connectIn",
      edge: "e",
      from: 1,
      port: fresh.port2,
      watermark: -Infinity,
      sender: 11,
    });
    retired.port1.close();
    await sleep(20); // the queued drop has run by now
    for (const port of [zero.port1, fresh.port1]) {
      const sender = new Sender(port, 8, 100, 1);
      senders.push(sender);
      for (let id = 0; id < 50; id++) sender.push({ value: { id }, ts: id }, new Token());
      sender.end();
    }
    await until(() => posted.some((m) => m.t === "done"), 5000, "done");
    const done = posted.find((m) => m.t === "done") as FromTask & { t: "done" };
    assert.equal(done.counters.out?.in, 100, "the new instance's 50 records were taken in too");
  } finally {
    await task.kill();
    for (const s of senders) s.close();
    for (const c of [zero, retired, fresh]) {
      c.port1.close();
      c.port2.close();
    }
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("round-robin routing whose every downstream instance has finished drops what a restarted task replays there, and fails when none has", () => {
  const spec = (finished: number[]) => ({
    edge: "sum->out",
    mode: "round" as const,
    assignment: [],
    ports: [] as [number, MessagePort][],
    capacity: 4,
    batchSize: 8,
    lingerMs: 5,
    side: "",
    finished,
  });
  const records = [{ value: 1, ts: 1 }, { value: 2, ts: 2 }];
  // The sink below had everything an earlier incarnation sent (the final sums): none to send again.
  new OutEdge(spec([0]), 0, 64).push(records, new Token());
  // No channel and none finished: a wiring fault, named.
  assert.throws(
    () => new OutEdge(spec([]), 0, 64).push(records, new Token()),
    /Cannot route record: no channel to instance undefined on sum->out/,
  );
});
