// The runtime under forced stops, restarts and transient faults: stages are closed on every path,
// retries end with the stage, transient faults of processors hold the stream instead of failing
// it, and options passed as `undefined` keep their defaults. Tests that check for leaks turn the
// resource and op sanitizers on (they are off by default).
import assert from "node:assert/strict";
import { collect, fromArray, pipeline, stage, type StreamRecord } from "../../mod.ts";

const fixtures = new URL("./fixtures/robustness_stages.ts", import.meta.url);
// Fixture stages pass records through untyped: their output fits whatever the test collects.
// deno-lint-ignore no-explicit-any
const ref = <I = unknown, O = any>(
  name: string,
  config: unknown,
  kind: "source" | "processor" | "sink" = "processor",
) => stage<I, O>(fixtures, config, { kind, export: name });

type Ev = { id: number };

function input(count: number): StreamRecord<Ev>[] {
  return Array.from({ length: count }, (_, id) => ({ value: { id }, ts: id }));
}

function assertAllOnce(got: number[], count: number): void {
  const distinct = new Set(got);
  assert.equal(
    distinct.size,
    count,
    `expected ${count} distinct ids, got ${distinct.size}`,
  );
  for (let i = 0; i < count; i++) assert.ok(distinct.has(i), `id ${i} missing`);
}

/** `run()`'s outcome, caught at once so that a rejection is never unhandled. */
function settle<T>(running: Promise<T>): Promise<T | Error> {
  return running.catch((e: Error) => e);
}

Deno.test("Pipeline.run() keeps the defaults of stage options passed as undefined", async () => {
  const out = collect<Ev>();
  const unset = {
    capacity: undefined,
    batchSize: undefined,
    lingerMs: undefined,
    parallelism: undefined,
    maxRetries: undefined,
  };
  const p = pipeline({
    mode: "inline",
    signals: false,
    defaults: unset,
    stopTimeoutMs: 100,
  });
  p.from(fromArray(input(1000)), unset)
    .via(ref("lookup", { hook: "process", downMs: 0 }), {
      ...unset,
      fuse: false,
    })
    .to(out.sink, unset);
  const running = settle(p.run());
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<"timed out">((r) => timer = setTimeout(() => r("timed out"), 5000));
  const result = await Promise.race([running, late]);
  clearTimeout(timer);
  if (result === "timed out") {
    await p.stop();
    await running;
  }
  if (result instanceof Error || result === "timed out") {
    throw new Error(`run(): ${result}`);
  }
  assert.equal(result.stages.lookup?.in, 1000);
  const got = (await out.values()).map((v) => v.id);
  assert.equal(got.length, 1000);
  assertAllOnce(got, 1000);
  await out.clear();
});
