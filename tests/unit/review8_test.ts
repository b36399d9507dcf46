// Review 8: adversarial tests of the changes after 1d2b6dc (bad input handling), inline and in
// workers: config checks (unsendable configs), non-record output of processors and sources,
// records structured clone refuses on a channel (dead-lettered, the rest sent), hook contracts,
// permissions and scale() right after run(). The standard: "Bad input gets a clear error (config:
// the zod path and message, before anything starts) or a dead-letter entry with the reason; it
// never crashes the runtime and nothing is silently dropped."
//
// Tests named "… (was a bug)" failed on the code as reviewed (b13ea9c) and were fixed after; each
// says what was expected, what happened and where the cause was. The one named "KNOWN" is ignored:
// it is how Deno's structured clone treats a URL inside an object. The others passed and stay as
// regression tests. Runs that might
// crash the process run in a child `deno run`; runs that might hang are bounded (`settles`).
import assert from "node:assert/strict";
import {
  collect,
  ConfigError,
  type DeadLetter,
  fromArray,
  map,
  memoryDeadLetters,
  pipeline,
  PipelineError,
  type RunSummary,
  window,
} from "../../mod.ts";
import { unsendable } from "../../actors/_clone.ts";
import { fixtureRef } from "./_fixture_ref.ts";
import { Threshold } from "./fixtures/review8_stages.ts";
import { inChild as runInChild } from "./_child.ts";
import { settles } from "./_wait.ts";

const fixtures = new URL("./fixtures/review8_stages.ts", import.meta.url);
const ref = fixtureRef(fixtures);
const modes = ["inline", "workers"] as const;
type Mode = (typeof modes)[number];

type Id = { id: number; bad?: unknown; wm?: number; kind?: string };

/** run()'s outcome, caught at once so that a rejection is never unhandled. */
function outcome<T>(running: Promise<T>): Promise<T | Error> {
  return running.catch((e: Error) => e);
}

/** The ids source of the fixtures. */
function ids(
  count: number,
  extra: {
    perPull?: number;
    delayMs?: number;
    keys?: number;
    junkAt?: number[];
    junk?: string[];
    tailMs?: number;
  } = {},
) {
  return ref<never, Id>("ids", { count, ...extra }, "source");
}

/** A pipeline for these tests: no signal handlers, dead letters in memory, short stops. */
function withDeadLetters(mode: Mode, extra: Record<string, unknown> = {}) {
  const dead = memoryDeadLetters();
  return {
    p: pipeline({ mode, signals: false, deadLetter: dead, stopTimeoutMs: 3000, ...extra }),
    dead,
  };
}

function reasons(dead: { entries: DeadLetter[] }): string[] {
  return dead.entries.map((e) => `${e.stage}: ${e.error.code}: ${e.error.message}`);
}

/** The ids of values that reached a collector, sorted, without the wmSpy's records. */
async function idsOf(out: { values(): Promise<Id[]> }): Promise<number[]> {
  return (await out.values()).map((v) => v?.id).filter((id): id is number =>
    typeof id === "number" && id >= 0
  )
    .sort((a, b) => a - b);
}

function range(n: number, skip: number[] = []): number[] {
  return Array.from({ length: n }, (_, i) => i).filter((i) => !skip.includes(i));
}

/** A child run (see _child.ts) with this file's fixtures. */
function inChild(body: string) {
  return runInChild(body, fixtures, 20_000);
}

/** Counters of `stage` in a summary (asserted present). */
function countersOf(summary: RunSummary, stage: string) {
  const c = summary.stages[stage];
  assert.ok(c, `no counters for stage "${stage}": ${Object.keys(summary.stages)}`);
  return c;
}

// ---------------------------------------------------------------------------------------------
// Build time: configs structured clone refuses, false positives, defaults.parallelism
// ---------------------------------------------------------------------------------------------

class Holder {
  fn = () => 1;
}

for (const mode of modes) {
  Deno.test(`[${mode}] a config holding what clones (Date, Map, Set, bytes, nested arrays, RegExp, BigInt, a cycle…) passes the check and runs`, async () => {
    const cyclic: Record<string, unknown> = { name: "c" };
    cyclic.self = cyclic;
    const shared = { s: [1, 2] };
    const extra = {
      at: new Date(0),
      map: new Map<string, unknown>([["a", [1, { b: new Date(1) }]]]),
      set: new Set([1, "two"]),
      bytes: new Uint8Array([1, 2, 3]),
      floats: new Float64Array(4),
      nested: [[1, [2, [3, [4, { deep: [5, [6]] }]]]], [], [[[]]]],
      re: /a+/g,
      big: 10n,
      bare: Object.assign(Object.create(null), { a: 1 }),
      err: new Error("not thrown, just held"),
      nan: NaN,
      minusZero: -0,
      undef: undefined,
      sparse: [1, , 3],
      cyclic,
      shared: [shared, shared],
    };
    const { p, dead } = withDeadLetters(mode);
    const out = collect<Id>();
    p.from(ids(3)).via(ref("anyConfig", { extra }), { name: "cfg" }).to(out.sink);
    const result = await outcome(settles(p.run(), 10_000, "run()"));
    await out.clear();
    assert.ok(!(result instanceof Error), `run() rejected: ${result}`);
    assert.deepEqual(reasons(dead), []);
  });

  Deno.test(`[${mode}] fromArray records with Dates, Maps, bytes, headers, ts 0 and negative ts, no key, pass the config check and arrive`, async () => {
    const items = [
      { value: { id: 0, at: new Date(5) }, ts: 0 },
      { value: { id: 1, m: new Map([["k", 1]]) }, ts: -5, headers: { h: "1" } },
      { value: { id: 2, b: new Uint8Array([7]) }, ts: -0, key: undefined },
      { value: { id: 3, nested: [[1], [[2]]] }, ts: 1e15, key: "" },
    ];
    const { p, dead } = withDeadLetters(mode);
    const out = collect<Id>();
    p.from(fromArray<Id>(items as never)).via(map((v: Id) => v), { fuse: false }).to(out.sink);
    const summary = await settles(p.run(), 10_000, "run()");
    const got = await out.records();
    await out.clear();
    assert.deepEqual(reasons(dead), []);
    assert.deepEqual(got.map((r) => r.value.id).sort(), [0, 1, 2, 3]);
    assert.deepEqual(got.find((r) => r.value.id === 1)?.headers, { h: "1" });
    assert.equal(got.find((r) => r.value.id === 1)?.ts, -5);
    assert.equal(countersOf(summary, "map").out, 4);
  });

  Deno.test(`[${mode}] a config holding a function, symbol, Map of functions or class instance fails run() with a ConfigError naming stage and path, nothing started`, async () => {
    const cases: [unknown, RegExp][] = [
      [{ list: [1, { fn: () => 1 }] }, /config\.extra\.list\[1\]\.fn: cannot be sent .*a function/],
      [{ s: Symbol("x") }, /config\.extra\.s: cannot be sent .*a symbol/],
      [{ m: new Map([["f", () => 2]]) }, /config\.extra\.m\.f: cannot be sent .*a function/],
      [{ h: new Holder() }, /config\.extra\.h: cannot be sent .*a Holder/],
      [
        { deep: [[[[{ a: [Symbol("deep")] }]]]] },
        /config\.extra\.deep\[0\]\[0\]\[0\]\[0\]\.a\[0\]/,
      ],
    ];
    for (const [extra, pattern] of cases) {
      const out = collect<Id>();
      const p = pipeline({ mode, signals: false });
      p.from(ids(3)).via(ref("anyConfig", { extra }), { name: "withBad" }).to(out.sink);
      const result = await outcome(settles(p.run(), 5000, "run()"));
      await out.clear();
      assert.ok(result instanceof ConfigError, `run() gave ${result}`);
      assert.match(result.message, /^Cannot configure stage "withBad": /);
      assert.match(result.message, pattern);
      assert.deepEqual(p.counters(), {}, "nothing started");
    }
    // In fromArray's records too: the stage is the source, the path the record's.
    const out = collect<unknown>();
    const p = pipeline({ mode, signals: false });
    p.from(fromArray<unknown>([{ value: 1, ts: 0 }, { value: { f: () => 1 }, ts: 1 }]))
      .to(out.sink);
    const result = await outcome(p.run());
    await out.clear();
    assert.ok(result instanceof ConfigError, String(result));
    assert.match(result.message, /stage "array": config\.items\[1\]\.value\.f: .*a function/);
  });

  Deno.test(`[${mode}] a config holding a Proxy passes the check, then run() rejects with a bare DataCloneError, no stage, no path (was a bug)`, async () => {
    // Expected: like a function in a config, a ConfigError `Cannot configure stage "withProxy":
    // config.extra.p: cannot be sent to a worker (…)` before anything starts. Happens: run()
    // rejects with "DataCloneError: #<Object> could not be cloned." from Runtime.#spawn posting
    // the task's init. Cause: unsendable() (actors/_clone.ts:35) walks an object whose prototype
    // is Object.prototype as plain data; Object.getPrototypeOf(proxy) answers the target's, so a
    // Proxy (a reactive store's state, an ORM entity…) is taken for a plain object and passes,
    // while structured clone refuses every Proxy.
    const out = collect<Id>();
    const p = pipeline({ mode, signals: false });
    p.from(ids(3)).via(ref("anyConfig", { extra: { p: new Proxy({ a: 1 }, {}) } }), {
      name: "withProxy",
    }).to(out.sink);
    const result = await outcome(settles(p.run(), 5000, "run()"));
    await out.clear();
    assert.ok(result instanceof ConfigError, `run() rejected with ${result}`);
    assert.match(result.message, /stage "withProxy".*config\.extra\.p/);
  });
}

Deno.test("defaults.parallelism above partitions: blamed on the default for a processor, on the stage's own option when set; harmless when every stage sets its own", async () => {
  {
    const out = collect();
    const p = pipeline({
      mode: "inline",
      signals: false,
      partitions: 4,
      defaults: { parallelism: 8 },
    });
    p.from(fromArray([{ value: 1, ts: 0 }])).via(map((v: number) => v), { name: "m" }).to(out.sink);
    const result = await outcome(p.run());
    await out.clear();
    assert.ok(result instanceof ConfigError, String(result));
    assert.match(result.message, /stage "m": options\.defaults\.parallelism: .*1\.\.4/);
  }
  {
    const out = collect();
    const p = pipeline({ mode: "inline", signals: false, partitions: 4 });
    p.from(fromArray([{ value: 1, ts: 0 }]), { parallelism: 6 }).to(out.sink);
    const result = await outcome(p.run());
    await out.clear();
    assert.ok(result instanceof ConfigError, String(result));
    assert.match(result.message, /stage "array": options\.parallelism: .*1\.\.4/);
  }
  {
    const out = collect<number>();
    const p = pipeline({
      mode: "inline",
      signals: false,
      partitions: 4,
      defaults: { parallelism: 8 },
    });
    p.from(fromArray([1, 2, 3].map((v) => ({ value: v, ts: v }))))
      .via(map((v: number) => v), { parallelism: 2 })
      .to(out.sink, { parallelism: 1 });
    const result = await outcome(settles(p.run(), 10_000, "run()"));
    const got = (await out.values()).sort();
    await out.clear();
    assert.ok(!(result instanceof Error), `run() rejected: ${result}`);
    assert.deepEqual(got, [1, 2, 3]);
  }
});

Deno.test("the config check passes a fromArray whose values hold plain objects, Dates or bytes", () => {
  // What it costs against zod's own validation of the same config is measured in
  // bench/config_check.ts (it was 5–10× for Dates and bytes: a structured clone per object).
  for (const x of [{ tags: ["a", "b"] }, new Date(5), new Uint8Array([1, 2, 3])]) {
    const items = Array.from({ length: 1000 }, (_, i) => ({ value: { id: i, x }, ts: i }));
    assert.equal(unsendable({ items }), undefined, String(x));
  }
  const items = [{ value: { id: 1, f: () => 1 }, ts: 1 }];
  assert.match(JSON.stringify(unsendable({ items })), /f/, "a function is found");
});

// ---------------------------------------------------------------------------------------------
// Output that is not a record: from process() (emitted, returned), hooks, side outputs, pull()
// ---------------------------------------------------------------------------------------------

const JUNK = [
  "string",
  "number",
  "null",
  "undefined",
  "array",
  "function",
  "no-value",
  "ts-string",
  "key-number",
  "headers-null",
  "headers-string",
] as const;

/** A record as the collect sink wrote it (JSON), checked for being one. */
function isRecord(r: unknown): boolean {
  const rec = r as { value?: unknown; ts?: unknown; key?: unknown } | null;
  return typeof rec === "object" && rec !== null && !Array.isArray(rec) && "value" in rec &&
    typeof rec.ts === "number" && (rec.key === undefined || typeof rec.key === "string");
}

for (const mode of modes) {
  for (const via of ["emit", "array"] as const) {
    Deno.test(`[${mode}] each kind of non-record a processor hands on (${via}) fails its input record, dead-lettered at that stage with the reason; the sink gets records only; counters agree`, async () => {
      // One stage per kind of junk, fused one after the other; stage j-<kind> spoils id <index>.
      const { p, dead } = withDeadLetters(mode);
      const out = collect<Id>();
      let flow = p.from(ids(20, { perPull: 5 }));
      JUNK.forEach((how, i) => {
        flow = flow.via(ref("junkOut", { at: [i], how, via }), { name: `j-${how}`, maxRetries: 1 });
      });
      flow.to(out.sink, { fuse: false });
      const summary = await settles(p.run(), 15_000, "run()");
      const got = await out.records();
      await out.clear();
      assert.deepEqual(got.filter((r) => !isRecord(r)), [], "the sink got non-records");
      const problems: string[] = [];
      JUNK.forEach((how, i) => {
        const stage = `j-${how}`;
        const entries = dead.entries.filter((e) => e.stage === stage);
        const nothing = via === "array" && (how === "null" || how === "undefined");
        // `ctx.emit(null)`: nothing or a dead letter are both fine; the other kinds fail.
        const allowed = nothing
          ? [0]
          : via === "emit" && (how === "null" || how === "undefined")
          ? [0, 1]
          : [1];
        if (!allowed.includes(entries.length)) {
          problems.push(
            `${stage}: ${entries.length} dead letters: ${JSON.stringify(reasons(dead))}`,
          );
        }
        for (const e of entries) {
          if ((e.record.value as Id).id !== i) {
            problems.push(`${stage}: dead letter of id ${e.record.value}`);
          }
          if (!/process\(\) gave /.test(e.error.message)) {
            problems.push(`${stage}: "${e.error.message}"`);
          }
        }
        const c = countersOf(summary, stage);
        if (c.deadLettered !== entries.length) {
          problems.push(`${stage}: deadLettered ${c.deadLettered}, ${entries.length} written`);
        }
        if (c.in - c.out !== entries.length) problems.push(`${stage}: in ${c.in}, out ${c.out}`);
      });
      assert.deepEqual(problems, []);
      const lost = JUNK.flatMap((how, i) =>
        dead.entries.some((e) => e.stage === `j-${how}`) ? [i] : []
      );
      assert.deepEqual(got.map((r) => r.value.id).sort((a, b) => a - b), range(20, lost));
      assert.equal(countersOf(summary, "collect").in, 20 - lost.length);
    });
  }

  Deno.test(`[${mode}] what a failed attempt emitted is dropped with it: a record emitted beside junk, then alone on the retry, arrives once`, async () => {
    const { p, dead } = withDeadLetters(mode);
    const out = collect<Id>();
    p.from(ids(10, { perPull: 10 }))
      .via(ref("junkOut", { at: [2, 5], how: "no-value", via: "emit-then-throw-once" }), {
        name: "retry",
      })
      .to(out.sink, { fuse: false });
    const summary = await settles(p.run(), 10_000, "run()");
    const got = await idsOf(out);
    await out.clear();
    assert.deepEqual(reasons(dead), []);
    assert.deepEqual(got, range(10));
    assert.equal(countersOf(summary, "retry").failed, 2);
    assert.equal(countersOf(summary, "retry").out, 10);
  });

  Deno.test(`[${mode}] a non-record sent to a side output with ctx.emitTo reaches the side sink; not dead-lettered (was a bug)`, async () => {
    // Expected: as for ctx.emit, what is not a record fails its input record and is
    // dead-lettered at stage "junkOut" with the reason; the side sink gets records only.
    // Happens: the side sink is handed "junk 3" (and null, { ts, key } without value) as they
    // are; nothing is dead-lettered. Cause: checkOutput (actors/_ops.ts, ProcessorOp.run) checks
    // ctx.out and the returned value only; Op.settle (_ops.ts:281-288) passes ctx.side to
    // services.side unchecked.
    const problems: string[] = [];
    for (const how of ["string", "null", "no-value"] as const) {
      const { p, dead } = withDeadLetters(mode);
      const out = collect<Id>(), aside = collect<unknown>();
      const flow = p.from(ids(10, { perPull: 5 }))
        .via(ref("junkOut", { at: [3], how, via: "side", side: "aside" }));
      flow.to(out.sink, { fuse: false });
      flow.sideOutput("aside").to(aside.sink);
      const result = await outcome(settles(p.run(), 10_000, "run()"));
      const sides = await aside.records();
      await out.clear();
      await aside.clear();
      if (result instanceof Error) problems.push(`${how}: run() rejected: ${result.message}`);
      const junk = sides.filter((r) => !isRecord(r));
      if (junk.length > 0) problems.push(`${how}: the side sink got ${JSON.stringify(junk)}`);
      if (dead.entries.length !== 1) problems.push(`${how}: dead letters ${reasons(dead)}`);
    }
    assert.deepEqual(problems, []);
  });

  Deno.test(`[${mode}] valid records of unusual shapes (headers, key undefined or "", ts 0, negative, -0, value null or undefined, Dates, bytes) pass, null and undefined beside them are nothing`, async () => {
    const { p, dead } = withDeadLetters(mode);
    const out = collect<Id>();
    p.from(ids(5)).via(ref("unusual", {})).keyBy().to(out.sink, { parallelism: 2 });
    const summary = await settles(p.run(), 10_000, "run()");
    const got = await out.records();
    await out.clear();
    assert.deepEqual(reasons(dead), []);
    assert.equal(got.length, 5 * 11);
    assert.equal(countersOf(summary, "unusual").out, 55);
    const headers = got.filter((r) => r.value?.kind === "headers");
    assert.deepEqual(headers.map((r) => r.headers), Array(5).fill({ a: "1", b: "" }));
    assert.deepEqual(
      got.filter((r) => r.value?.kind === "ts-negative").map((r) => r.ts).sort(),
      [-1_000_000, -1_000_001, -1_000_002, -1_000_003, -1_000_004].sort(),
    );
    assert.equal(got.filter((r) => r.value === null).length, 5);
  });

  for (const hook of ["flush", "onWatermark", "onTick"] as const) {
    Deno.test(`[${mode}] ${hook}() handing on a non-record fails the run naming the stage and the hook, without crashing`, async () => {
      for (const via of ["return", "emit"] as const) {
        const { p } = withDeadLetters(mode, { defaults: { maxRestarts: 0, tickMs: 10 } });
        const out = collect<Id>();
        p.from(ids(10, { perPull: 1, delayMs: hook === "onTick" ? 15 : 0 }))
          .via(ref("hookJunk", { hook, how: "string", via }))
          .to(out.sink, { fuse: false });
        const result = await outcome(settles(p.run(), 10_000, "run()"));
        await out.clear();
        assert.ok(result instanceof PipelineError, `${via}: ${result}`);
        assert.match(result.message, /stage "hookJunk"/);
        assert.match(result.message, new RegExp(`${hook}\\(\\) gave string, not a record`));
      }
    });
  }

  Deno.test(`[${mode}] a source's non-records mixed in with its records are dead-lettered at the source, named; every record arrives once over a keyed edge; counters agree`, async () => {
    const { p, dead } = withDeadLetters(mode);
    const out = collect<Id>();
    const junkAt = JUNK.map((_, i) => i + 3);
    p.from(ids(20, { perPull: 5, keys: 3, junkAt, junk: [...JUNK] }))
      .keyBy()
      .to(out.sink, { parallelism: 2 });
    const summary = await settles(p.run(), 10_000, "run()");
    const got = await out.records();
    await out.clear();
    assert.deepEqual(got.filter((r) => !isRecord(r)), []);
    assert.deepEqual(got.map((r) => r.value.id).sort((a, b) => a - b), range(20));
    assert.equal(dead.entries.length, JUNK.length, JSON.stringify(reasons(dead)));
    for (const e of dead.entries) {
      assert.equal(e.stage, "ids");
      assert.equal(e.error.code, "E_NOT_A_RECORD");
      assert.match(e.error.message, /^pull\(\) gave /);
    }
    // The function itself could not cross: it is described.
    assert.ok(
      dead.entries.some((e) => e.record.value === "[function junkFn]"),
      JSON.stringify(dead.entries.map((e) => e.record.value)),
    );
    assert.equal(countersOf(summary, "ids").out, 20);
    assert.equal(countersOf(summary, "ids").deadLettered, JUNK.length);
    assert.equal(countersOf(summary, "collect").in, 20);
  });
}

// ---------------------------------------------------------------------------------------------
// open(): promises of instances, instances with the required hook only, no instance
// ---------------------------------------------------------------------------------------------

for (const mode of modes) {
  Deno.test(`[${mode}] stages whose open() returns a promise of an instance that has only its required hook (a class's method) run`, async () => {
    const dir = await Deno.makeTempDir({ prefix: "sluice-r8-" });
    try {
      const { p, dead } = withDeadLetters(mode);
      p.from(ids(10, { perPull: 3 }))
        .via(ref("asyncOpen", { delayMs: 20 }), { fuse: false })
        .to(ref("asyncSink", { path: `${dir}/ids` }, "sink"), {
          permissions: { read: [dir], write: [dir] },
        });
      const summary = await settles(p.run(), 10_000, "run()");
      const written = (await Deno.readTextFile(`${dir}/ids`)).split("\n").filter(Boolean);
      assert.deepEqual(reasons(dead), []);
      assert.deepEqual(written.map(Number).sort((a, b) => a - b), range(10));
      assert.equal(countersOf(summary, "asyncOpen").restarts, 0);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  });

  Deno.test(`[${mode}] an open() resolving to nothing, or to an object without pull(), fails at once naming the stage and open()`, async () => {
    const cases: [ReturnType<typeof pipeline>, string][] = [];
    {
      const { p } = withDeadLetters(mode);
      p.from(ids(10)).via(ref("asyncOpenNothing", {})).to(collect().sink);
      cases.push([p, "asyncOpenNothing"]);
    }
    {
      const { p } = withDeadLetters(mode);
      p.from(ref("noPull", {}, "source")).to(collect().sink);
      cases.push([p, "noPull"]);
    }
    for (const [p, name] of cases) {
      const result = await outcome(settles(p.run(), 10_000, "run()"));
      assert.ok(result instanceof PipelineError, String(result));
      assert.match(result.message, new RegExp(`stage "${name}".*open\\(\\) returned`));
      assert.equal(p.counters()[name]?.restarts ?? 0, 0, result.message);
    }
  });
}

// ---------------------------------------------------------------------------------------------
// Records structured clone refuses, on a channel: dead-lettered, the rest of the batch goes on
// ---------------------------------------------------------------------------------------------

const REFUSED: [string, RegExp][] = [
  ["function", /\(record\.value\.bad: a function\)/],
  ["symbol", /\(record\.value\.bad: a symbol\)/],
  ["weakmap", /\(record\.value\.bad: a WeakMap\)/],
  ["deep-function", /\(record\.value\.bad\.a\[0\]\.b\.c\[1\]: a function\)/],
  ["map-of-function", /\(record\.value\.bad\.f: a function\)/],
];

/** Checks the dead letters of refused records: at stage `stage`, ids `expected`, each once. */
function assertRefused(
  dead: { entries: DeadLetter[] },
  stage: string,
  expected: number[],
  why: RegExp,
) {
  const entries = dead.entries.filter((e) => e.error.code === "E_NOT_CLONEABLE");
  assert.deepEqual(reasons(dead).filter((r) => !r.includes("E_NOT_CLONEABLE")), []);
  assert.deepEqual(
    entries.map((e) => (e.record.value as Id).id).sort((a, b) => a - b),
    expected,
    "each refused record is dead-lettered once",
  );
  for (const e of entries) {
    assert.equal(e.stage, stage);
    assert.match(e.error.message, /^Cannot send record to the next stage: it could not be cloned/);
    assert.match(e.error.message, why);
    // What could not cross is described in the dead letter's copy of the record.
    assert.equal(unsendable(e.record), undefined, JSON.stringify(e.record));
  }
}

for (const mode of modes) {
  Deno.test(`[${mode}] refused records spread over several batches (some wholly refused, the last one too) are dead-lettered once each with the path; the rest arrive once; counters agree`, async () => {
    const spoiled = [1, 2, 3, 4, 5, 6, 7, 9, 17, 38, 39];
    for (const [what, why] of REFUSED) {
      const { p, dead } = withDeadLetters(mode);
      const out = collect<Id>();
      p.from(ids(40, { perPull: 4, delayMs: 1 }), { batchSize: 4 })
        .via(ref("poison", { at: spoiled, what }), { batchSize: 4 })
        .to(out.sink, { fuse: false });
      const result = await outcome(settles(p.run(), 15_000, `run() (${what})`));
      const got = await out.records();
      await out.clear();
      assert.ok(!(result instanceof Error), `${what}: run() rejected: ${result}`);
      assertRefused(dead, "poison", spoiled, why);
      assert.deepEqual(got.map((r) => r.value.id).sort((a, b) => a - b), range(40, spoiled), what);
      const poison = countersOf(result, "poison"), sink = countersOf(result, "collect");
      assert.deepEqual(
        [poison.in, poison.out, poison.deadLettered, sink.in],
        [40, 40 - spoiled.length, spoiled.length, 40 - spoiled.length],
        `${what}: [poison in, out, deadLettered, sink in]`,
      );
    }
  });

  Deno.test(`[${mode}] records emitted with ctx.emit that are refused, on a keyed edge to 3 instances, are dead-lettered once each; counters agree`, async () => {
    const spoiled = [0, 5, 6, 7, 8, 30, 59];
    const { p, dead } = withDeadLetters(mode);
    const out = collect<Id>();
    p.from(ids(60, { perPull: 6, keys: 7, delayMs: 1 }), { batchSize: 3 })
      .via(ref("poison", { at: spoiled, what: "symbol", via: "emit" }), { batchSize: 3 })
      .keyBy()
      .to(out.sink, { parallelism: 3 });
    const summary = await settles(p.run(), 15_000, "run()");
    const got = await out.records();
    await out.clear();
    assertRefused(dead, "poison", spoiled, /a symbol/);
    assert.deepEqual(got.map((r) => r.value.id).sort((a, b) => a - b), range(60, spoiled));
    assert.equal(countersOf(summary, "poison").out, 60 - spoiled.length);
    assert.equal(countersOf(summary, "poison").deadLettered, spoiled.length);
    assert.equal(countersOf(summary, "collect").in, 60 - spoiled.length);
    // The live counters agree with the summary once the run is over.
    const live = p.counters().poison?.instances.reduce((n, c) => n + c.deadLettered, 0);
    assert.equal(live, spoiled.length);
  });

  Deno.test(`[${mode}] a source's own refused record is dead-lettered at the source; counters agree`, async () => {
    const { p, dead } = withDeadLetters(mode);
    const out = collect<Id>();
    // Fused: the poison stage is part of the source's task, whose output is refused.
    p.from(ids(12, { perPull: 4 }))
      .via(ref("poison", { at: [11], what: "function" }), { name: "spoiler" })
      .to(out.sink, { fuse: false });
    const summary = await settles(p.run(), 10_000, "run()");
    await out.clear();
    assertRefused(dead, "spoiler", [11], /a function/);
    assert.equal(countersOf(summary, "spoiler").out, 11);
    assert.equal(countersOf(summary, "collect").in, 11);
  });

  Deno.test(`[${mode}] the watermark carried by a wholly refused batch still reaches the next stage before the end`, async () => {
    // ids 0..5, one a pull, 10 ms apart: each lingers in an open batch (of up to 4) when the
    // source's watermark (= its ts) comes, so the watermark rides at the batch's end. 4 and 5 are
    // refused: their batches are emptied. The source then waits 400 ms before its end: the next
    // stage must see watermark 5 meanwhile (lost with the batch, it would see 3 until the end).
    const { p, dead } = withDeadLetters(mode);
    const out = collect<Id>();
    p.from(ids(6, { perPull: 1, delayMs: 10, tailMs: 400 }), { batchSize: 4 })
      .via(ref("poison", { at: [4, 5], what: "function" }), { batchSize: 4 })
      .via(ref("wmSpy", {}), { fuse: false })
      .to(out.sink);
    await settles(p.run(), 10_000, "run()");
    const got = await out.values();
    await out.clear();
    assertRefused(dead, "poison", [4, 5], /a function/);
    assert.deepEqual(got.filter((v) => v.id >= 0).map((v) => v.id).sort(), [0, 1, 2, 3]);
    const marks = got.filter((v) => v.id === -1).map((v) => v.wm!);
    assert.ok(marks.includes(5), `watermarks seen: ${marks}`);
  });

  Deno.test(`[${mode}] a receiver restarted after a batch lost its refused records gets it replayed without them; no dead letter twice`, async () => {
    const dir = await Deno.makeTempDir({ prefix: "sluice-r8-" });
    try {
      const spoiled = [1, 4, 7, 8, 15];
      const { p, dead } = withDeadLetters(mode);
      const out = collect<Id>();
      // Batches of 3: [3,4,5] goes on as [3,5], and the receiver fails on it, once.
      p.from(ids(24, { perPull: 3, delayMs: 2 }), { batchSize: 3 })
        .via(ref("poison", { at: spoiled, what: "deep-function" }), { batchSize: 3 })
        .via(ref("crashOnce", { marker: `${dir}/marker`, at: 5 }), {
          fuse: false,
          permissions: { read: [dir], write: [dir] },
        })
        .to(out.sink);
      const summary = await settles(p.run(), 15_000, "run()");
      const got = [...new Set(await idsOf(out))];
      await out.clear();
      assert.equal(countersOf(summary, "crashOnce").restarts, 1, "the receiver restarted once");
      assertRefused(dead, "poison", spoiled, /record\.value\.bad\.a\[0\]\.b\.c\[1\]/);
      assert.deepEqual(got, range(24, spoiled));
      assert.equal(countersOf(summary, "poison").deadLettered, spoiled.length);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  });

  Deno.test(`[${mode}] a record a stage dead-letters itself (ctx.deadLetter) holding a function, a Map of functions or a Proxy is written, those parts described`, async () => {
    for (const what of ["deep-function", "map-of-function", "proxy", "symbol"] as const) {
      const { p, dead } = withDeadLetters(mode);
      const out = collect<Id>();
      p.from(ids(6)).via(ref("poison", { at: [2], what, via: "dead" })).to(out.sink);
      const result = await outcome(settles(p.run(), 10_000, "run()"));
      const got = await idsOf(out);
      await out.clear();
      assert.ok(!(result instanceof Error), `${what}: run() rejected: ${result}`);
      assert.deepEqual(got, [0, 1, 3, 4, 5], what);
      assert.equal(dead.entries.length, 1, what);
      assert.equal(dead.entries[0]?.error.message, "cannot handle this record");
      assert.equal((dead.entries[0]?.record.value as Id).id, 2);
    }
  });

  Deno.test(`[${mode}] with a fan-out to two sinks, one refused record is dead-lettered twice and taken twice off the stage's out counter (was a bug)`, async () => {
    // Expected: the record the stage handed on once is dead-lettered once (its input acked once
    // that is written), and the stage's counters stay true: out = 9 (each sink got 9),
    // deadLettered = 1. Happens: two dead letters for id 3, out = 8, deadLettered = 2, while
    // both sinks got 9. Cause: the task's main outputs push the same records to every edge
    // (Task.#outputsDownstream, actors/_task.ts:604); each edge's Sender refuses the record
    // and calls Task.#rejected (_task.ts:422), which dead-letters it and does
    // `counters.out -= records.length` once per edge.
    const { p, dead } = withDeadLetters(mode);
    const a = collect<Id>(), b = collect<Id>();
    const flow = p.from(ids(10, { perPull: 2, delayMs: 2 }))
      .via(ref("poison", { at: [3], what: "function" }));
    flow.to(a.sink, { fuse: false });
    flow.to(b.sink, { fuse: false });
    const summary = await settles(p.run(), 10_000, "run()");
    const gotA = await idsOf(a), gotB = await idsOf(b);
    await a.clear();
    await b.clear();
    assert.deepEqual(gotA, range(10, [3]));
    assert.deepEqual(gotB, range(10, [3]));
    const poison = countersOf(summary, "poison");
    assert.deepEqual(
      { deadLetters: dead.entries.length, out: poison.out, deadLettered: poison.deadLettered },
      { deadLetters: 1, out: 9, deadLettered: 1 },
    );
  });

  Deno.test(`[${mode}] a refused record on a side output is taken off the stage's main out counter (was a bug)`, async () => {
    // Expected: poison.out = 10 (its main output, all 10 records, reached the sink), one dead
    // letter for the side record it could not send. Happens: out = 9 while the main sink got
    // 10. Cause: Task.#rejected (actors/_task.ts:427) subtracts every refused record from
    // the last stage's `out`, but records sent to a side output (Op.settle → services.side)
    // were never counted in `out`.
    const { p, dead } = withDeadLetters(mode);
    const out = collect<Id>(), aside = collect<Id>();
    const flow = p.from(ids(10, { perPull: 2, delayMs: 2 }))
      .via(ref("poison", { at: [3], what: "function", via: "side", side: "aside" }));
    flow.to(out.sink, { fuse: false });
    flow.sideOutput<Id>("aside").to(aside.sink);
    const summary = await settles(p.run(), 10_000, "run()");
    const main = await idsOf(out), side = await idsOf(aside);
    await out.clear();
    await aside.clear();
    assert.deepEqual(main, range(10));
    assert.deepEqual(side, range(10, [3]));
    assert.equal(dead.entries.length, 1);
    assert.equal(countersOf(summary, "collect").in, 10);
    assert.equal(countersOf(summary, "poison").out, 10, "out counts the main output");
  });

  Deno.test.ignore(
    `KNOWN (Deno's structured clone): [${mode}] a record holding a URL crosses a channel as {}: its content silently dropped, no dead letter`,
    async () => {
      // unsendable() (actors/_clone.ts) names a URL as something that cannot be sent, and a config
      // holding one is refused; a record holding one is not. Expected: dead-lettered with
      // E_NOT_CLONEABLE ("record.value.bad: a URL") like a function, or at least not changed on
      // the way. Happens: the sink gets { id: 3, bad: {} } and nothing is dead-lettered.
      // Cause: Sender.#send (actors/_sender.ts:240-244) looks at records only when postMessage
      // throws DataCloneError, but MessagePort.postMessage serializes platform objects that
      // structuredClone() refuses (URL, URLSearchParams, Headers, Response…) as empty objects.
      // Kept as known: Deno's own structuredClone({ u: new URL(…) }) gives { u: {} } as well, and
      // records cross as structured clone would give them (README); finding such objects would mean
      // walking every non-plain value of every batch.
      const { p, dead } = withDeadLetters(mode);
      const out = collect<Id>();
      p.from(ids(6, { perPull: 2 })).via(ref("poison", { at: [3], what: "url" }))
        .to(out.sink, { fuse: false });
      await settles(p.run(), 10_000, "run()");
      const got = await out.values();
      await out.clear();
      const three = got.find((v) => v.id === 3);
      // Dead-lettered, or arrived whole (the collect sink writes a URL as its href).
      assert.ok(
        (three === undefined && dead.entries.length === 1) || typeof three?.bad === "string",
        `the sink got ${JSON.stringify(three)}; dead letters ${JSON.stringify(reasons(dead))}`,
      );
    },
  );
}

// ---------------------------------------------------------------------------------------------
// Later changes: the input passed on as it is skips the check (7238a2e); hooks' contract (README)
// ---------------------------------------------------------------------------------------------

for (const mode of modes) {
  Deno.test(`[${mode}] a processor that spoils its input record in place and returns it passes the check: a numeric key, a string ts, no value or null headers go on (was a bug)`, async () => {
    // `process(r) { r.key = r.value.userId; return r; }` with a numeric id is the usual way.
    // Expected (README: "Whatever a stage hands on is checked to be a record"): the input
    // record fails, dead-lettered at stage "mutate" naming what is wrong; the sink gets records
    // only. Happens: the record goes on as it is: the sink writes { key: 3 }, { ts: "3" }, a
    // record without value, headers null; nothing is dead-lettered. Cause: ProcessorOp.run
    // (actors/_ops.ts:424, commit 7238a2e) skips checkOutput when the output is the input object
    // itself (`out[outs] !== record`), taking it as checked where it was made, but process()
    // may have changed it since.
    const problems: string[] = [];
    for (const how of ["key-number", "ts-string", "delete-value", "headers-null"] as const) {
      const { p, dead } = withDeadLetters(mode);
      const out = collect<Id>();
      p.from(ids(6, { perPull: 3 })).via(ref("mutate", { at: [3], how }), { maxRetries: 0 })
        .to(out.sink, { fuse: false });
      const result = await outcome(settles(p.run(), 10_000, "run()"));
      const got = await out.records();
      await out.clear();
      if (result instanceof Error) problems.push(`${how}: run() rejected: ${result.message}`);
      const bad = got.filter((r) => !isRecord(r) || (r.headers as unknown) === null);
      if (bad.length > 0) problems.push(`${how}: the sink got ${JSON.stringify(bad)}`);
      if (dead.entries.filter((e) => e.stage === "mutate").length !== 1) {
        problems.push(`${how}: dead letters ${JSON.stringify(reasons(dead))}`);
      }
    }
    assert.deepEqual(problems, []);
  });

  Deno.test(`[${mode}] a numeric key set in place ahead of a keyed edge is routed as if it were a string (was a bug)`, async () => {
    // The same skip ahead of keyBy(): expected a dead letter "key is a number"; happens: the
    // record is hashed with a number key and goes on (or the routing throws), unreported.
    const { p, dead } = withDeadLetters(mode);
    const out = collect<Id>();
    p.from(ids(6, { perPull: 3 })).via(ref("mutate", { at: [3], how: "key-number" }), {
      maxRetries: 0,
    }).keyBy().to(out.sink, { parallelism: 2 });
    const result = await outcome(settles(p.run(), 10_000, "run()"));
    const got = await out.records();
    await out.clear();
    assert.ok(!(result instanceof Error), `run() rejected: ${result}`);
    assert.deepEqual(got.filter((r) => typeof r.key === "number"), [], "a numeric key went on");
    assert.equal(dead.entries.length, 1, JSON.stringify(reasons(dead)));
  });

  Deno.test(`[${mode}] a processor's record with a ts that is a number but not finite (NaN, ±Infinity) goes on to a processing-time sink (README, b13ea9c)`, async () => {
    // README: "a number ts (one that is not finite is dead-lettered by stages on event time only)".
    for (const ts of ["nan", "infinity", "-infinity"] as const) {
      const { p, dead } = withDeadLetters(mode);
      const out = collect<Id>();
      p.from(ids(6, { perPull: 3 })).via(ref("nonFinite", { at: [2], ts }), { maxRetries: 0 })
        .to(out.sink, { fuse: false });
      const result = await outcome(settles(p.run(), 10_000, "run()"));
      const got = await idsOf(out);
      await out.clear();
      assert.ok(!(result instanceof Error), `${ts}: run() rejected: ${result}`);
      assert.deepEqual(got, range(6), ts);
      assert.deepEqual(reasons(dead), [], ts);
    }
  });

  Deno.test(`[${mode}] a source record with ts Infinity (now let through) moves the source's watermark to +∞: every later record is late for an event-time stage (was a bug)`, async () => {
    // README (b13ea9c): a ts that is a number but not finite passes; "stages on event time"
    // dead-letter such a record. Expected: the window dead-letters record 2 alone, records 3..5
    // are windowed on time. Happens: the source's watermark (max ts − out-of-orderness) becomes
    // +∞ at record 2, so the window sends 3, 4 and 5 to its "late" side output (dead-lettered as
    // E_SIDE_OUTPUT where none is wired): one bad ts spoils the event time of all that follows.
    // Cause: Task.#consume (actors/_task.ts:995-997) takes the max over every ts, Infinity
    // included (ProcessorOp.run does the same for `watermarks`, _ops.ts:387); firstNonRecord let
    // the record through since b13ea9c (actors/_ops.ts notARecord/looksLikeRecord).
    const { p, dead } = withDeadLetters(mode);
    const out = collect<unknown>(), late = collect<Id>();
    const flow = p.from(
      ids(6, { perPull: 1, delayMs: 5, junkAt: [2], junk: ["ts-infinity"] }),
    ).via(window({ type: "tumbling", sizeMs: 2, aggregate: { n: { op: "count" } } }));
    flow.to(out.sink);
    flow.sideOutput<Id>("late").to(late.sink);
    const result = await outcome(settles(p.run(), 10_000, "run()"));
    const lateIds = await idsOf(late);
    await out.clear();
    await late.clear();
    assert.ok(!(result instanceof Error), `run() rejected: ${result}`);
    assert.deepEqual(lateIds, [], "records after it were late");
    assert.equal(dead.entries.length, 1, JSON.stringify(reasons(dead)));
  });

  Deno.test(`[${mode}] flush() handing on a non-record is restarted maxRestarts times, its input replayed each time, instead of failing at once (was a bug)`, async () => {
    // README (47de3d5): "output from onWatermark, onTick or flush that is not a record — fails
    // the run at once with an error naming the stage and the hook (E_CONTRACT): no restart would
    // cure it". Happens: with the default maxRestarts (5) the instance is restarted 5 times, each
    // replaying the whole input to the sink (duplicates), then the run fails "failed 6 times …;
    // last cause TypeError: Cannot pass on output: flush() gave …". Cause: ProcessorOp.#fromHook
    // (actors/_ops.ts:463-470) wraps checkOutput's plain TypeError in a HookFailure; its code
    // is "TypeError", not "E_CONTRACT" (contractError), so Task.#fail (_task.ts, FATAL) does not
    // take it as fatal.
    const { p } = withDeadLetters(mode);
    const out = collect<Id>();
    p.from(ids(5)).via(ref("hookJunk", { hook: "flush", how: "number", via: "return" }), {
      fuse: false,
    }).to(out.sink);
    const result = await outcome(settles(p.run(), 20_000, "run()"));
    const got = await idsOf(out);
    await out.clear();
    assert.ok(result instanceof PipelineError, String(result));
    assert.match(result.message, /stage "hookJunk".*flush\(\)/);
    assert.equal(p.counters().hookJunk?.restarts, 0, result.message);
    assert.ok(got.length <= 5, `the sink got ${got.length} records for 5 inputs`);
  });
}

// ---------------------------------------------------------------------------------------------
// Records structured clone refuses that unsendable() does not see: a Proxy, a throwing getter
// ---------------------------------------------------------------------------------------------

/** A child run: 40 ids in batches of 2, `what` spoils id 20, the sink takes one batch at a time. */
function refusedInChild(mode: Mode, what: string): string {
  return `
const dead = S.memoryDeadLetters();
const out = S.collect();
const result = await S.pipeline({ mode: ${
    JSON.stringify(mode)
  }, signals: false, deadLetter: dead, stopTimeoutMs: 3000 })
  .from(S.stage(fx, { count: 40, perPull: 40 }, { kind: "source", export: "ids" }), { batchSize: 2 })
  .via(S.stage(fx, { at: [20], what: ${
    JSON.stringify(what)
  }, shape: "differs" }, { export: "poison" }), { batchSize: 2 })
  .to(out.sink, { fuse: false, capacity: 1 })
  .run().then(() => "resolved", (e) => "rejected: " + e.message);
const ids = (await out.values()).map((v) => v.id);
await out.clear();
console.log(JSON.stringify({ result, ids: ids.length, distinct: new Set(ids).size, dead: dead.entries.map((e) => e.error.message) }));
`;
}

Deno.test("[inline] a record holding a Proxy, sent when an ack frees a credit, crashes the whole process (was a bug)", async () => {
  // Expected: dead-lettered (E_NOT_CLONEABLE) like a record holding a function; the 39 others
  // arrive and run() resolves. Happens: "error: Uncaught DataCloneError: #<Object> could not be
  // cloned." and the process exits with code 1. Cause: unsendable() (actors/_clone.ts:35) takes
  // a Proxy for a plain object and finds nothing, so Sender.#sendCloneable (_sender.ts:268,
  // `if (bad.length === 0) throw error`) rethrows; a batch queued for credit is sent from the
  // port's onmessage handler (Sender.#listen → ack → #pump → #send), where nothing catches.
  const child = await inChild(refusedInChild("inline", "proxy"));
  assert.ok(!child.timedOut, "the child hung");
  assert.equal(child.code, 0, `the process crashed: ${child.stderr.slice(0, 300)}`);
  assert.equal(child.out?.result, "resolved", JSON.stringify(child.out));
  assert.equal(child.out?.distinct, 39, JSON.stringify(child.out));
});

Deno.test("[inline] a record with a getter that throws, sent when an ack frees a credit, crashes the whole process (was a bug)", async () => {
  // Expected: the record is dead-lettered with the getter's error, the rest arrive (at worst
  // run() rejects). Happens: "error: Uncaught Error: getter exploded" from MessagePort
  // serialization and the process exits with code 1. Cause: Sender.#send (actors/_sender.ts:243)
  // handles DataCloneError only; another throw from postMessage escapes the port's
  // onmessage handler (Sender.#listen → ack → #pump → #send) uncaught. (Sent from the linger
  // timer instead, the same record fails the run after 5 restarts, blamed on the source.)
  const child = await inChild(refusedInChild("inline", "throwing-getter"));
  assert.ok(!child.timedOut, "the child hung");
  assert.equal(child.code, 0, `the process crashed: ${child.stderr.slice(0, 300)}`);
  assert.match(String(child.out?.result), /^(resolved|rejected: .*getter exploded)/);
});

Deno.test("[workers] a record holding a Proxy fails the run after 5 restarts, blamed on the source, the input replayed each time; nothing dead-lettered (was a bug)", async () => {
  // Expected: dead-lettered at stage "poison" with E_NOT_CLONEABLE, the other 9 arrive once,
  // run() resolves. Happens: the send from the linger timer throws DataCloneError, the task
  // fails and is restarted 5 times (the records before it are replayed to the sink each time),
  // and run() rejects: `stage "ids" instance 0 failed 6 times …; last cause DataCloneError: …`
  // (the source it is fused with, not the stage that made the record; nothing dead-lettered).
  // Cause: unsendable() (actors/_clone.ts:35) takes the Proxy for a plain object, so
  // Sender.#sendCloneable (_sender.ts:268) rethrows.
  const { p, dead } = withDeadLetters("workers");
  const out = collect<Id>();
  p.from(ids(10, { perPull: 2, delayMs: 2 }))
    .via(ref("poison", { at: [3], what: "proxy", shape: "differs" }))
    .to(out.sink, { fuse: false });
  const result = await outcome(settles(p.run(), 20_000, "run()"));
  const got = await idsOf(out);
  await out.clear();
  assert.ok(!(result instanceof Error), `run() rejected: ${result}`);
  assert.deepEqual(got, range(10, [3]));
  assert.deepEqual(dead.entries.map((e) => [e.stage, e.error.code]), [[
    "poison",
    "E_NOT_CLONEABLE",
  ]]);
});

// ---------------------------------------------------------------------------------------------
// Permissions: NotCapable is fatal whenever it comes, in a hook; per record in process()
// ---------------------------------------------------------------------------------------------

Deno.test("[workers] a sink that needs a permission only in flush(), or a processor only in onWatermark(), fails the run at once naming stage and permission", async () => {
  for (
    const [name, build] of [
      [
        "envInFlush",
        (p: ReturnType<typeof pipeline>) => p.from(ids(5)).to(ref("envInFlush", {}, "sink")),
      ],
      [
        "envInWatermark",
        (p: ReturnType<typeof pipeline>) =>
          p.from(ids(5, { perPull: 1 })).via(ref("envInWatermark", {}), { fuse: false })
            .to(collect().sink),
      ],
    ] as const
  ) {
    const { p } = withDeadLetters("workers");
    build(p);
    const result = await outcome(settles(p.run(), 10_000, "run()"));
    assert.ok(result instanceof PipelineError, `${name}: ${result}`);
    assert.match(result.message, new RegExp(`stage "${name}".*NotCapable: Requires env access`));
    assert.match(result.message, /no restart can cure/);
    assert.equal(p.counters()[name]?.restarts, 0, result.message);
  }
});

Deno.test("[workers] a processor that needs a permission in process() dead-letters each record with the reason; the run ends normally", async () => {
  const { p, dead } = withDeadLetters("workers");
  const out = collect<Id>();
  p.from(ids(4)).via(ref("envInProcess", {}), { maxRetries: 0 }).to(out.sink);
  const summary = await settles(p.run(), 10_000, "run()");
  await out.clear();
  assert.equal(countersOf(summary, "envInProcess").restarts, 0);
  assert.equal(dead.entries.length, 4);
  for (const e of dead.entries) assert.match(e.error.message, /Requires env access/);
});

// ---------------------------------------------------------------------------------------------
// scale() right after run()
// ---------------------------------------------------------------------------------------------

for (const mode of modes) {
  Deno.test(`[${mode}] scale() right after a run() that fails to compile rejects at once, not hanging; an unknown stage is a RangeError and the run goes on`, async () => {
    {
      const p = pipeline({ mode, signals: false });
      p.from(ids(3)).via(ref("anyConfig", { extra: () => 1 }), { name: "bad" }).to(collect().sink);
      const running = outcome(p.run());
      const scaled = await outcome(settles(p.scale("bad", 2), 5000, "scale()"));
      const result = await running;
      assert.ok(result instanceof ConfigError, String(result));
      assert.ok(scaled instanceof Error, "scale() of a pipeline that never ran resolved");
    }
    {
      const out = collect<Id>();
      const p = pipeline({ mode, signals: false });
      p.from(ids(200, { perPull: 10, delayMs: 2 })).keyBy().via(map((v: Id) => v), {
        name: "m",
      }).to(out.sink);
      const running = p.run();
      await assert.rejects(() => settles(p.scale("nope", 2), 5000, "scale()"), RangeError);
      const summary = await settles(running, 10_000, "run()");
      assert.equal(countersOf(summary, "m").in, 200);
      await out.clear();
    }
  });
}

for (const mode of modes) {
  Deno.test(`[${mode}] refused records ahead of a stateful keyed stage rescaled mid-run: each dead-lettered once, the counts per key exact`, async () => {
    const count = 300, keys = 5;
    const spoiled = [0, 1, 2, 50, 51, 52, 53, 149, 150, 151, 250, 299];
    const { p, dead } = withDeadLetters(mode, { checkpointMs: 50 });
    const out = collect<{ id: number; key: string; count: number }>();
    p.from(ids(count, { perPull: 6, delayMs: 3, keys }), { batchSize: 3 })
      .via(ref("poison", { at: spoiled, what: "symbol" }), { batchSize: 3 })
      .keyBy()
      .via(ref("keyedCount", {}), { name: "count", parallelism: 2 })
      .to(out.sink);
    const running = p.run();
    await new Promise((r) => setTimeout(r, 150));
    const scaled = await outcome(settles(p.scale("count", 3), 10_000, "scale()"));
    const summary = await settles(running, 20_000, "run()");
    const got = await out.values();
    await out.clear();
    assert.ok(!(scaled instanceof Error), `scale() rejected: ${scaled}`);
    assertRefused(dead, "poison", spoiled, /a symbol/);
    const expected: Record<string, number> = {};
    for (const i of range(count, spoiled)) {
      expected[`k${i % keys}`] = (expected[`k${i % keys}`] ?? 0) + 1;
    }
    const counts: Record<string, number> = {};
    for (const v of got) {
      assert.ok(!(v.key in counts), `key ${v.key} emitted twice`);
      counts[v.key] = v.count;
    }
    assert.deepEqual(counts, expected);
    assert.equal(countersOf(summary, "poison").out, count - spoiled.length);
  });
}

for (const mode of modes) {
  Deno.test(`[${mode}] when every record is refused (3000, batches all emptied), each is dead-lettered once and the run ends`, async () => {
    const count = 3000;
    const { p, dead } = withDeadLetters(mode);
    const out = collect<Id>();
    p.from(ids(count, { perPull: 100 }), { batchSize: 50 })
      .via(ref("poison", { at: range(count), what: "function" }), { batchSize: 50 })
      .to(out.sink, { fuse: false });
    const summary = await settles(p.run(), 20_000, "run()");
    const got = await idsOf(out);
    await out.clear();
    assert.deepEqual(got, []);
    assert.equal(dead.entries.length, count);
    assert.equal(new Set(dead.entries.map((e) => (e.record.value as Id).id)).size, count);
    assert.equal(countersOf(summary, "poison").out, 0);
    assert.equal(countersOf(summary, "poison").deadLettered, count);
    assert.equal(countersOf(summary, "collect").in, 0);
  });
}

for (const mode of modes) {
  Deno.test(`[${mode}] a config valid on the main thread but not once cloned (a class instance) fails at once, naming its own stage and path, not the source it is fused with`, async () => {
    const { p } = withDeadLetters(mode);
    p.from(ids(5)).via(ref("classConfig", { threshold: new Threshold(3) }), { name: "limit" })
      .to(collect().sink);
    const result = await outcome(settles(p.run(), 10_000, "run()"));
    assert.ok(result instanceof Error, `run() resolved: ${JSON.stringify(result)}`);
    assert.match(result.message, /stage "limit"/);
    assert.match(result.message, /config\.threshold/);
    assert.doesNotMatch(result.message, /stage "ids"/);
    assert.equal(p.counters().limit?.restarts ?? 0, 0, result.message);
  });
}
