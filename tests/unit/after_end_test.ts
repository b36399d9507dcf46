// Failures after an instance has sent its end of stream: its downstream may have finished by
// then. Such a run must end, with every record delivered and the failure in the summary; it must
// not hang on a replacement that feeds instances already done.
import assert from "node:assert/strict";
import { pipeline, type RunSummary } from "../../mod.ts";
import { fixtureRef } from "./_fixture_ref.ts";
import { faultFiles } from "./_paced.ts";
import { within } from "./_wait.ts";

const ref = fixtureRef(new URL("./fixtures/after_end_stages.ts", import.meta.url));
const modes = ["inline", "workers"] as const;
const COUNT = 2000;

async function lines(path: string): Promise<string[]> {
  return (await Deno.readTextFile(path).catch(() => "")).split("\n").filter(Boolean);
}

/** Ids the sink wrote: each of 0..count-1 at least once (asserted); returns how many repeats. */
async function assertAllWritten(path: string, count: number): Promise<number> {
  const ids = (await lines(path)).map((l) => Number(l.slice(3)));
  const distinct = new Set(ids);
  for (let i = 0; i < count; i++) assert.ok(distinct.has(i), `id ${i} was not written`);
  assert.equal(distinct.size, count);
  return ids.length - count;
}

/** Runs `p` for at most 10 s: a hang fails the test (the run is stopped, forced, first). */
async function ends(p: ReturnType<typeof pipeline>): Promise<RunSummary> {
  const running = p.run();
  running.catch(() => {});
  const got = await within(running, 10_000);
  if (got === "timed out") {
    await p.stop();
    await running.catch(() => {});
    assert.fail("the run did not end within 10 s");
  }
  return got;
}

for (const mode of modes) {
  for (const how of mode === "workers" ? ["throw", "close"] as const : ["throw"] as const) {
    Deno.test(`${mode}: the source's last ack fails (${how}) after the sink finished: the run ends, once each (was a bug)`, async () => {
      const f = await faultFiles("sluice-after-end-");
      try {
        const log = `${f.dir}/source`, out = `${f.dir}/out`;
        const summary = await ends(
          pipeline({ mode, signals: false, stopTimeoutMs: 3000, name: "after-end" })
            .from(
              ref(
                "lastAckFails",
                { count: COUNT, perPull: 100, log, marker: f.marker, how },
                "source",
              ),
              { name: "src", fuse: false, permissions: f.perms },
            )
            .to(ref("idLog", { log: out }, "sink"), {
              name: "out",
              fuse: false,
              permissions: f.perms,
            }),
        );
        assert.equal(await assertAllWritten(out, COUNT), 0, "ids written twice");
        const failure = summary.failures.find((x) => x.stage === "src");
        assert.ok(failure, `no failure of src in ${JSON.stringify(summary.failures)}`);
        assert.match(failure.message, how === "throw" ? /cannot commit the last position/ : /./);
        // Nothing was left to deliver: the source was not read again.
        assert.equal((await lines(log)).filter((l) => l.startsWith("open")).length, 1);
      } finally {
        await Deno.remove(f.dir, { recursive: true });
      }
    });
  }
}

Deno.test("workers: a pass-through dies after its end of stream, one of its two sinks done: the run ends, nothing lost (was a bug)", async () => {
  const f = await faultFiles("sluice-after-end-");
  try {
    const log = `${f.dir}/source`, out = `${f.dir}/out`;
    const summary = await ends(
      pipeline({ mode: "workers", signals: false, stopTimeoutMs: 3000, name: "after-end-mid" })
        .from(ref("lastAckFails", { count: COUNT, perPull: 100, log }, "source"), {
          name: "src",
          fuse: false,
          permissions: f.perms,
        })
        .via(ref("diesAfterEnd", { marker: f.marker, delayMs: 100 }), {
          name: "mid",
          fuse: false,
          permissions: f.perms,
        })
        .keyBy()
        .to(ref("idLog", { log: out, slowInstance: 1, delayMs: 200 }, "sink"), {
          name: "out",
          parallelism: 2,
          permissions: f.perms,
        }),
    );
    // The replacement replays to the slow sink only: the other had everything and finished.
    await assertAllWritten(out, COUNT);
    assert.deepEqual(summary.failures.map((x) => `${x.stage} ${x.code}`), ["mid E_WORKER"]);
    assert.equal(summary.stages.mid?.restarts, 1);
  } finally {
    await Deno.remove(f.dir, { recursive: true });
  }
});
