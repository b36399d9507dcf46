import assert from "node:assert/strict";
import {
  collect,
  ConfigError,
  fromArray,
  map,
  mapRecord,
  memoryDeadLetters,
  pipeline,
  stage,
  type StreamRecord,
  testPipeline,
  window,
} from "../../mod.ts";

const fixtures = new URL("./fixtures/runtime_stages.ts", import.meta.url);
const input = Array.from({ length: 20 }, (_, id) => ({ value: { id, poison: id === 7 }, ts: id }));

Deno.test("Pipeline.run() rejects a stage config mistake with the zod path before anything starts", async () => {
  const out = collect();
  const p = pipeline({ mode: "workers", signals: false })
    .from(fromArray(input))
    .to(stage(fixtures, { path: "/tmp/x" }, { kind: "sink", export: "slowSink" }));
  await assert.rejects(() => p.run(), (e: unknown) => {
    assert.ok(e instanceof ConfigError);
    assert.match(e.message, /^Cannot configure stage "slow": config\.delayMs: /);
    assert.ok(!e.message.includes("\n"));
    return true;
  });
  // Nothing ran: counters are empty because no runtime was started.
  assert.deepEqual(p.counters(), {});
  await out.clear();
});

Deno.test("Pipeline.run() rejects unknown and mistyped stage options with their path", async () => {
  const cases: [Record<string, unknown>, RegExp][] = [
    [{ paralelism: 2 }, /options: Unrecognized key\(s\) in object: 'paralelism'/],
    [{ parallelism: "2" }, /options\.parallelism: /],
    [{ strategy: "one_for_some" }, /options\.strategy: /],
    [{ parallelism: 1000 }, /options\.parallelism: must be an integer within 1\.\.64/],
  ];
  for (const [options, pattern] of cases) {
    const out = collect();
    const p = pipeline({ mode: "inline", signals: false })
      .from(fromArray(input))
      .via(map((v: unknown) => v), options as never)
      .to(out.sink);
    await assert.rejects(() => p.run(), (e: unknown) => {
      assert.ok(e instanceof ConfigError, String(e));
      assert.match(e.message, /^Cannot configure stage "map"/);
      assert.match(e.message, pattern);
      return true;
    });
    await out.clear();
  }
});

Deno.test("Pipeline.run() rejects unknown pipeline options", async () => {
  const out = collect();
  const p = pipeline({ mode: "inline", heartbeat: 5 } as never).from(fromArray(input)).to(out.sink);
  await assert.rejects(
    () => p.run(),
    /Cannot build pipeline "pipeline": options: Unrecognized key\(s\) in object: 'heartbeat'/,
  );
  await out.clear();
});

Deno.test("Pipeline builder rejects a stage without a sink and a duplicate name", async () => {
  const p = pipeline({ mode: "inline", signals: false });
  p.from(fromArray(input)).via(map((v: unknown) => v), { name: "m" });
  await assert.rejects(() => p.run(), /stage "m" has no downstream sink/);
  const q = pipeline({ mode: "inline" });
  const flow = q.from(fromArray(input)).via(map((v: unknown) => v), { name: "m" });
  assert.throws(() => flow.via(map((v: unknown) => v), { name: "m" }), /name "m" is already taken/);
});

Deno.test("A per-stage dead-letter sink receives that stage's dead letters", async () => {
  const own = memoryDeadLetters();
  const shared = memoryDeadLetters();
  const out = collect();
  await pipeline({ mode: "inline", signals: false, deadLetter: shared })
    .from(fromArray(input))
    .via(stage<{ id: number }, { id: number }>(fixtures, {}, { export: "poisonous" }), {
      deadLetter: own,
      maxRetries: 0,
    })
    .via(
      map((v: { id: number }) => {
        if (v.id === 11) throw new Error("eleven");
        return v;
      }),
      { maxRetries: 0 },
    )
    .to(out.sink)
    .run();
  assert.deepEqual(own.entries.map((e) => (e.record.value as { id: number }).id), [7]);
  assert.deepEqual(shared.entries.map((e) => (e.record.value as { id: number }).id), [11]);
  assert.equal(shared.entries[0]?.stage, "map");
  assert.equal((await out.values()).length, 18);
  await out.clear();
});

Deno.test("Flow.keyBy(fn) sets each record key from the function before a parallel stage", async () => {
  const out = collect<{ id: number; k: string }>();
  const records = Array.from(
    { length: 200 },
    (_, id) => ({ value: { id, k: `k${id % 5}` }, ts: id }),
  );
  await pipeline({ mode: "workers", signals: false })
    .from(fromArray(records))
    .keyBy((v: { k: string }) => v.k)
    .via(map((v: { id: number; k: string }) => v), { parallelism: 3 })
    .to(out.sink)
    .run();
  const got: StreamRecord<{ id: number; k: string }>[] = await out.records();
  assert.equal(got.length, 200);
  for (const r of got) assert.equal(r.key, r.value.k);
  await out.clear();
});

Deno.test("Stage option watermarks: a processor that sets ts from the data drives event time", async () => {
  // Source records carry no event time (ts 0), like file chunks; the stage takes it from `t`.
  const records = [5000, 5200, 100, 6100].map((t, i) => ({ value: { t, i }, ts: 0 }));
  // The marker only splits the input into two pulls: the source's own watermark stays at 0.
  const input = [records[0]!, records[1]!, { watermark: 0 }, records[2]!, records[3]!];
  const run = async (watermarks?: { outOfOrdernessMs: number }) =>
    await testPipeline(
      (flow) =>
        flow
          .via(
            mapRecord((r: StreamRecord<{ t: number; i: number }>) => ({ ...r, ts: r.value.t })),
            {
              watermarks,
            },
          )
          .via(window({ type: "tumbling", sizeMs: 1000, aggregate: { n: { op: "count" } } })),
      input,
      { sideOutputs: ["late"], mode: "workers" },
    );
  const assigned = await run({ outOfOrdernessMs: 1000 });
  // Watermark 4200 after the first batch's max ts 5200: the record at t=100 is late.
  assert.deepEqual(assigned.sides.late?.map((r) => r.value), [{ t: 100, i: 2 }]);
  const upstream = await run();
  // Without it, the source's watermark (ts 0) holds event time until the end: nothing is late.
  assert.deepEqual(upstream.sides.late, []);
  assert.equal(upstream.output.reduce((n, r) => n + (r.value as { n: number }).n, 0), 4);
});
