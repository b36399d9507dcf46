// A fileSource striped over one file (parallelism 2, a decoder and a pass-through fused behind
// it) above a keyed sum: one instance of the fused chain fails mid-file. Restarted, it resumes at
// its place in the checkpoint the sum is restored to, and goes on taking its own chunks (the
// position holds the chunk's index in the file's cut): the sums come out exact. Read again from
// the start it would count its first chunks twice; resumed with its chunk count started over, it
// would take the other instance's chunks and leave some of its own.
import assert from "node:assert/strict";
import { decodeNdjson, fileSource, memoryDeadLetters, pipeline } from "../../mod.ts";
import { fixtureRef } from "./_fixture_ref.ts";
import { expectedSums, faultFiles } from "./_paced.ts";
import { outputs, resolves } from "./_runs.ts";
import { exists } from "./fixtures/_once.ts";

const ref = fixtureRef(new URL("./fixtures/review9_stages.ts", import.meta.url));
const COUNT = 20_000, KEYS = 20;

for (const mode of ["inline", "workers"] as const) {
  for (const [instance, snapAt] of [[0, 3000], [1, 12_000]] as const) {
    Deno.test({
      name:
        `${mode}: striped fileSource instance ${instance} fails after a checkpoint past id ${snapAt} and resumes at its place in it: exact sums`,
      sanitizeOps: false,
      sanitizeResources: false,
      fn: async () => {
        const f = await faultFiles("sluice-fr-");
        try {
          const path = `${f.dir}/in.ndjson`, out = `${f.dir}/out`, snap = `${f.dir}/snap`;
          const text = Array.from({ length: COUNT }, (_, i) => JSON.stringify({ id: i, n: i % 7 }));
          await Deno.writeTextFile(path, text.join("\n") + "\n");
          const p = pipeline({
            mode,
            signals: false,
            checkpointMs: 20,
            deadLetter: memoryDeadLetters(),
          });
          p.from(fileSource({ path, format: "ndjson", chunkBytes: 256 }, { parallelism: 2 }))
            .via(decodeNdjson({ lineHeaders: false }, { parallelism: 2 }))
            .via(
              // It fails on its first batch once the sum has snapshot id `snapAt`.
              ref("hop", { fault: { at: "batch", waitFor: snap, instance, marker: f.marker } }),
              { name: "hop", parallelism: 2, permissions: f.perms },
            )
            .keyBy((v: { id: number }) => `k${v.id % 20}`) // KEYS
            .via(ref("sum", { snapAt, snapFile: snap }), { name: "sum", permissions: f.perms })
            .to(ref("sink", { out }, "sink"), { name: "out", permissions: f.perms });
          const s = await resolves(p);
          assert.ok(exists(`${f.marker}.1`), `the fused chain's instance ${instance} failed`);
          assert.equal(s.stages.hop?.restarts, 1);
          const finals = (await outputs(out)).filter((o) => o.final);
          const got = Object.fromEntries(finals.map((o) => [o.key!, o.sum!]));
          assert.deepEqual(got, expectedSums(COUNT, KEYS));
        } finally {
          await Deno.remove(f.dir, { recursive: true });
        }
      },
    });
  }
}
