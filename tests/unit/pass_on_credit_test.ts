// A stage that only passes records on (no sink in its task) gives its input's credit back once it
// has processed a batch: what the batch derived waits in downstream mailboxes, which credits bound.
// The sender keeps the batch for a replay until it is acked (at most RETAIN × capacity of them),
// so upstream no longer waits on every stage below it for each ack — down to a stateful stage's
// checkpoint.
import assert from "node:assert/strict";
import { type Ev, expectedSums, pacedSource, runtimeFixtures, type Sum } from "./_paced.ts";
import {
  collect,
  map,
  memoryStateBackend,
  pipeline,
  stage,
  type StateBackend,
  type StreamRecord,
} from "../../mod.ts";
import { RETAIN } from "../../actors/_sender.ts";

const wait = (ms: number) => new Promise((r) => setTimeout(r, ms));

for (const mode of ["inline", "workers"] as const) {
  Deno.test(`A stateless stage frees its input's credit once processed; the source stops at RETAIN × capacity while acks wait (${mode})`, async () => {
    // Checkpoints cannot be stored until the gate opens: nothing downstream of the source is acked.
    const memory = memoryStateBackend();
    let open!: () => void;
    const gate = new Promise<void>((resolve) => open = resolve);
    const state: StateBackend = {
      getMany: (keys) => memory.getMany(keys),
      setMany: async (entries) => {
        await gate;
        await memory.setMany(entries);
      },
    };
    const count = 2000, perPull = 10, capacity = 2;
    const out = collect<Sum>();
    const p = pipeline({ mode, signals: false, state, heartbeatMs: 20 });
    p.from(pacedSource(count, perPull), { batchSize: perPull })
      .via(map((v: Ev) => v), { fuse: false, capacity, batchSize: perPull, lingerMs: 1 })
      .keyBy()
      .via(stage<Ev, Sum>(runtimeFixtures, {}, { kind: "processor", export: "keyedSum" }), {
        fuse: false,
        capacity,
      })
      .to(out.sink);
    const running = p.run();
    try {
      let produced = 0;
      for (let i = 0; i < 50; i++) {
        await wait(20);
        produced = Math.max(produced, p.counters().paced?.instances[0]?.out ?? 0);
      }
      // Credit back on processing: more than the map's mailbox holds got past the source (before,
      // the source stopped at `capacity` batches and one open)...
      assert.ok(produced >= (capacity + 3) * perPull, `${produced} produced`);
      // ...and no more than the source's sender may keep unacked, plus the batch being pulled.
      assert.ok(produced <= (RETAIN * capacity + 2) * perPull, `${produced} produced`);
    } finally {
      open();
    }
    await running;
    const sums = Object.fromEntries(
      (await out.records()).map((r: StreamRecord<Sum>) => [r.value.key, r.value.sum]),
    );
    await out.clear();
    assert.deepEqual(sums, expectedSums(count, 20));
  });
}
