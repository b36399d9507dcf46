// A stateless instance that dies while an aligned checkpoint is being stored, or right after, before
// the acks coming up from the stateful stage below reach it. The checkpoint holds everything its
// source sent ahead of the barrier; the stateful stage below is restored to it; so the source must
// not replay that input to the replacement, or the state counts it twice. (Seen in CI: a keyed
// window's counts 1.5 × what they should be, review7_event_time_test.ts.) Exact sums, each key
// once; both modes; the hop throws, or its worker dies.
import assert from "node:assert/strict";
import { fixtureRef } from "./_fixture_ref.ts";
import { codeOf, codes, hows, make, outputs, resolves, slowWrite } from "./_runs.ts";
import { expectedSums, faultFiles } from "./_paced.ts";
import { exists } from "./fixtures/_once.ts";
import { Sender } from "../../actors/_sender.ts";
import { Token } from "../../actors/_token.ts";
import type { ToReceiver } from "../../actors/_protocol.ts";

const ref = fixtureRef(new URL("./fixtures/review9_stages.ts", import.meta.url));
const COUNT = 3000;
const KEYS = 20;

for (const mode of ["inline", "workers"] as const) {
  for (const how of hows(mode)) {
    Deno.test({
      name:
        `${mode}: a stateless hop above a keyed sum dies (${how}) while a checkpoint is stored: its source does not replay what the checkpoint holds (exact sums)`,
      sanitizeOps: false,
      sanitizeResources: false,
      fn: async () => {
        const f = await faultFiles("sluice-cut-");
        try {
          const out = `${f.dir}/out`, storing = `${f.dir}/storing`;
          const s = await resolves(
            make(mode, { state: slowWrite(storing, 100, 3), checkpointMs: 50 })
              .from(ref("src", { count: COUNT, perPull: 50, delayMs: 8 }, "source"), {
                name: "src",
                fuse: false,
                permissions: f.perms,
              })
              .via(
                ref("hop", {
                  fault: { at: "batch", how, marker: f.marker, waitFor: storing },
                }),
                { name: "hop", fuse: false, permissions: f.perms },
              )
              .keyBy()
              .via(ref("sum", {}), { name: "sum", fuse: false })
              .to(ref("sink", { out }, "sink"), {
                name: "out",
                fuse: false,
                permissions: f.perms,
              }),
            30_000,
          );
          assert.ok(exists(`${f.marker}.1`), "the hop failed");
          assert.deepEqual(codes(s), [`hop ${codeOf(how)}`]);
          const finals = (await outputs(out)).filter((o) => o.final);
          const got: Record<string, number> = {};
          for (const o of finals) {
            assert.ok(!(o.key! in got), `key ${o.key} written twice`);
            got[o.key!] = o.sum!;
          }
          assert.deepEqual(got, expectedSums(COUNT, KEYS), "per-key sums");
          const counted = finals.reduce((n, o) => n + o.count!, 0);
          assert.equal(counted, COUNT, "records counted into the sums");
        } finally {
          await Deno.remove(f.dir, { recursive: true });
        }
      },
    });
  }
}

Deno.test("Sender.commit(n) acks the batches sealed before barrier n only, also once barrier n + 1 was sent; a barrier never sent commits nothing", async () => {
  const { port1, port2 } = new MessageChannel();
  const got: number[] = [];
  port2.onmessage = (e: MessageEvent<ToReceiver>) => {
    if (e.data.t === "b") got.push(e.data.seq);
  };
  const released: number[] = [];
  const sender = new Sender(port1, 8, 2, 1000);
  const push = (i: number) => {
    const token = new Token(() => released.push(i));
    sender.push({ value: i, ts: i }, token);
    token.release(); // the task's own hold: what is left is the batch's
  };
  push(0), push(1); // batch 1
  sender.barrier(1);
  push(2), push(3); // batch 2
  sender.barrier(2);
  push(4), push(5); // batch 3
  await new Promise((r) => setTimeout(r, 10));
  assert.deepEqual(got, [1, 2, 3], "sent");
  assert.equal(sender.inFlight, 3);
  sender.commit(1); // comes after barrier 2 was sent
  assert.equal(sender.inFlight, 2, "batch 1 acked");
  assert.deepEqual(released.sort(), [0, 1]);
  sender.commit(2);
  assert.equal(sender.inFlight, 1, "batch 2 acked, batch 3 (after barrier 2) kept");
  assert.deepEqual(released.sort(), [0, 1, 2, 3]);
  sender.commit(3); // never sent here
  assert.equal(sender.inFlight, 1, "a barrier never sent commits nothing");
  sender.close();
  port2.close();
});
