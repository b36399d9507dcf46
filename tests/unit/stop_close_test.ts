// stop() while a stage's close() is slow: the close gets what is left of the stop's time, is
// reported as E_CLOSE_TIMEOUT when that runs out, and the stop is not forced.
import assert from "node:assert/strict";
import { pipeline } from "../../mod.ts";
import { fixtureRef } from "./_fixture_ref.ts";
import { sleep, until, within } from "./_wait.ts";

const ref = fixtureRef(new URL("./fixtures/review3_lifecycle_stages.ts", import.meta.url));

for (const mode of ["inline", "workers"] as const) {
  Deno.test(`stop() with a close() slower than the stop's time: not forced, E_CLOSE_TIMEOUT in the summary (${mode}) (was a bug)`, async () => {
    const dir = await Deno.makeTempDir({ prefix: "sluice-stop-close-" });
    try {
      const ids = `${dir}/ids`;
      const stopTimeoutMs = 1000;
      const p = pipeline({ mode, signals: false, stopTimeoutMs, name: "stop-close" })
        .from(ref("endless", { perPull: 10, delayMs: 5 }, "source"), { name: "src" })
        .to(ref("slowCloseSink", { ids, closeDelayMs: 10_000 }, "sink"), {
          name: "out",
          fuse: false,
          permissions: { read: [dir], write: [dir] },
        });
      const running = p.run();
      running.catch(() => {});
      // Stopped once the sink has written (a fixed pause was too short on a loaded machine).
      await until(
        () => {
          try {
            return Deno.statSync(ids).size > 0;
          } catch {
            return false;
          }
        },
        10_000,
        "the sink's first write",
      );
      const asked = Date.now();
      await p.stop();
      const summary = await within(running, 5000);
      assert.notEqual(summary, "timed out");
      if (summary === "timed out") return;
      const took = Date.now() - asked;
      assert.ok(took < stopTimeoutMs + 200, `stop() took ${took} ms`);
      const codes = summary.failures.map((f) => `${f.stage} ${f.code}`);
      assert.deepEqual(codes, ["out E_CLOSE_TIMEOUT"]);
      assert.match(summary.failures[0]!.message, /the stop's time is up/);
      assert.ok((summary.stages.out?.in ?? 0) > 0, "the sink wrote something");
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  });

  Deno.test(`stop() with a close() that fits the stop's time: it completes, nothing reported (${mode})`, async () => {
    const dir = await Deno.makeTempDir({ prefix: "sluice-stop-close-" });
    try {
      const ids = `${dir}/ids`, trace = `${dir}/trace`;
      const p = pipeline({ mode, signals: false, stopTimeoutMs: 2000, name: "stop-close-ok" })
        .from(ref("endless", { perPull: 10, delayMs: 5 }, "source"), { name: "src" })
        .to(ref("slowCloseSink", { ids, trace, closeDelayMs: 300 }, "sink"), {
          name: "out",
          fuse: false,
          permissions: { read: [dir], write: [dir] },
        });
      const running = p.run();
      running.catch(() => {});
      await sleep(300);
      await p.stop();
      const summary = await running;
      assert.deepEqual(summary.failures, []);
      const closes = (await Deno.readTextFile(trace)).split("\n").filter((l) =>
        l.startsWith("close")
      );
      assert.deepEqual(closes, ["close out#0"]);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  });
}
