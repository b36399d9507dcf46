// startTimeoutMs in both modes: an instance whose open() never resolves is replaced.
import assert from "node:assert/strict";
import { collect, pipeline } from "../../mod.ts";
import { fixtureRef } from "./_fixture_ref.ts";
import { within } from "./_wait.ts";

const ref = fixtureRef(new URL("./fixtures/open_stages.ts", import.meta.url));

for (const mode of ["inline", "workers"] as const) {
  Deno.test(`an open() that never resolves is replaced after startTimeoutMs (${mode})${mode === "inline" ? " (was a bug)" : ""}`, async () => {
    const dir = await Deno.makeTempDir({ prefix: "sluice-start-" });
    const out = collect<{ id: number }>();
    try {
      // A worker's start (its imports) takes longer on a loaded machine: its bound leaves room.
      const startTimeoutMs = mode === "workers" ? 1000 : 300;
      const p = pipeline({ mode, signals: false, startTimeoutMs, stopTimeoutMs: 2000 })
        .from(ref("hangsOpenOnce", { count: 500, marker: `${dir}/marker` }, "source"), {
          name: "src",
          permissions: { read: [dir], write: [dir] },
        })
        .to(out.sink);
      const running = p.run();
      running.catch(() => {});
      const summary = await within(running, 5000);
      if (summary === "timed out") {
        await p.stop();
        await running.catch(() => {});
        assert.fail("the run did not end within 5 s");
      }
      assert.deepEqual(summary.failures.map((f) => `${f.stage} ${f.code}`), ["src E_START"]);
      assert.equal(summary.stages.src?.restarts, 1);
      const ids = (await out.values()).map((v) => v.id).sort((a, b) => a - b);
      assert.deepEqual(ids, Array.from({ length: 500 }, (_, i) => i));
    } finally {
      await out.clear();
      await Deno.remove(dir, { recursive: true });
    }
  });
}
