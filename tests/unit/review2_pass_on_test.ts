// Review of e179863: a stateless stage that passes records on frees its input's credit ("f") once
// it has processed a batch; its sender keeps the batch until acked and replays it, processed or
// not, to a restarted receiver.
//
// A crash of such a stage replays into its new incarnation every batch it had processed and not
// seen acked: up to RETAIN × capacity of them. Their records reach the stateful stage below a second
// time. Under one_for_one that stage used to stay up, its state holding their effects already: the
// sums came out too high (about 3 runs in 12 at 68351c2, 9 in 12 with "f"). Now a restart takes
// every stateful instance below the failed one back to its last checkpoint, as rest_for_one did.
// Each test runs the pipeline 3 times.
import assert from "node:assert/strict";
import {
  askedCheckpoints,
  type Ev,
  expectedSums,
  pacedSource,
  runtimeFixtures,
  type Sum,
} from "./_paced.ts";
import { collect, stage } from "../../mod.ts";

async function run(strategy: "one_for_one" | "rest_for_one") {
  const marker = (await Deno.makeTempDir()) + "/marker";
  const out = collect<Sum>();
  const count = 6000;
  const summary = await askedCheckpoints({ batchSize: 16, capacity: 2 })
    .from(pacedSource(count, 50), { fuse: false })
    .via(
      stage<Ev, Ev>(runtimeFixtures, { at: 3500, marker, how: "throw" }, { export: "faulty" }),
      { name: "hop", fuse: false, strategy, permissions: { read: [marker], write: [marker] } },
    )
    .keyBy()
    .via(stage<Ev, Sum>(runtimeFixtures, {}, { export: "keyedSum" }), { name: "sum", fuse: false })
    .to(out.sink)
    .run();
  assert.equal(summary.stages.hop?.restarts, 1, "the hop really crashed once");
  const got = Object.fromEntries((await out.values()).map((v) => [v.key, v.sum]));
  await out.clear();
  const summed = Object.values(got).reduce((a, b) => a + b, 0);
  const expected = expectedSums(count, 20);
  const want = Object.values(expected).reduce((a, b) => a + b, 0);
  assert.deepEqual(
    got,
    expected,
    `summed ${summed}, want ${want}; sum in ${summary.stages.sum?.in}`,
  );
}

for (const strategy of ["one_for_one", "rest_for_one"] as const) {
  Deno.test(`Supervisor restarts a stateless hop that crashes once in front of a keyed sum (${strategy}), sums stay exact`, async () => {
    for (let i = 0; i < 3; i++) await run(strategy);
  });
}
