// The state backend suite: the same four tests against every store that can hold a pipeline's
// checkpoints (KV in tests/unit, Redis and MongoDB in tests/integration). Each test gets a fresh
// namespace (file, key prefix or database), checks that the pipeline's state is really there
// through the vendor's own client, and removes it.
import assert from "node:assert/strict";
import {
  collect,
  type Collector,
  type DeadLetterSink,
  memoryDeadLetters,
  pipeline,
  type StageRef,
  type StateBackend,
} from "../../actors/mod.ts";
import { aggregate } from "../../processors/aggregate.ts";
import { openStore, type StoreDescriptor } from "../../stores/open_store.ts";
import type { Store } from "../../stores/store.ts";
import {
  fileSink,
  type TotalOut,
  windowedPipeline,
  type WindowOut,
  windowRef,
} from "./fixtures/state_pipeline.ts";
import { crashingWindowRef, type Ev, record, steady } from "./fixtures/state_stages.ts";

/** One store to run the suite against, in a namespace of its own. */
export interface BackendFixture {
  /** How to open it (also in another process). */
  descriptor: StoreDescriptor;
  /** Every key the store holds, read with the vendor's own client (the store's prefix removed). */
  rawKeys(): Promise<string[]>;
  /** Removes everything the test wrote (idempotent). */
  cleanup(): Promise<void>;
}

const KEYS = 12;
const STEP_MS = 1;
const SIZE_MS = 100;

function uid(prefix: string): string {
  return `${prefix}-${Date.now().toString(36)}-${crypto.randomUUID().slice(0, 8)}`;
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

async function until(what: string, cond: () => Promise<boolean>, timeoutMs = 20_000) {
  const deadline = Date.now() + timeoutMs;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error(`Timed out after ${timeoutMs} ms waiting ${what}`);
    await sleep(10);
  }
}

/** Window results per `windowStart|key`, computed in plain TS over records [from, to). */
function expectedWindows(from: number, to: number): Map<string, { sum: number; count: number }> {
  const out = new Map<string, { sum: number; count: number }>();
  for (let id = from; id < to; id++) {
    const r = record(id, KEYS, STEP_MS);
    const start = Math.floor(r.ts / SIZE_MS) * SIZE_MS;
    const slot = out.get(`${start}|${r.key}`) ?? { sum: 0, count: 0 };
    slot.sum += r.value.n;
    slot.count++;
    out.set(`${start}|${r.key}`, slot);
  }
  return out;
}

/** Per-key totals over records [0, to): sum, count and how many windows the key has. */
function expectedTotals(to: number): Record<string, Omit<TotalOut, "key">> {
  const out: Record<string, Omit<TotalOut, "key">> = {};
  for (const [slot, w] of expectedWindows(0, to)) {
    const key = slot.split("|")[1]!;
    const t = out[key] ??= { sum: 0, count: 0, windows: 0 };
    t.sum += w.sum;
    t.count += w.count;
    t.windows++;
  }
  return out;
}

/**
 * Window results by `windowStart|key`. A window may come out twice only with the very same result
 * (at-least-once output after a restart); a second, different result means state was lost or
 * counted twice, and fails.
 */
function byWindow(values: WindowOut[]): {
  results: Map<string, { sum: number; count: number }>;
  duplicates: number;
} {
  const results = new Map<string, { sum: number; count: number }>();
  let duplicates = 0;
  for (const v of values) {
    assert.equal(v.windowEnd, v.windowStart + SIZE_MS);
    const slot = `${v.windowStart}|${v.key}`;
    const seen = results.get(slot);
    if (seen) {
      assert.deepEqual({ sum: v.sum, count: v.count }, seen, `window ${slot} fired twice, apart`);
      duplicates++;
    } else results.set(slot, { sum: v.sum, count: v.count });
  }
  return { results, duplicates };
}

/** The last running totals per key (the one with the most windows). */
function finalTotals(values: TotalOut[]): Record<string, Omit<TotalOut, "key">> {
  const out: Record<string, Omit<TotalOut, "key">> = {};
  for (const { key, ...t } of values) {
    if (!out[key] || out[key].windows < t.windows) out[key] = t;
  }
  return out;
}

function sorted<T>(map: Map<string, T>): [string, T][] {
  return [...map].sort(([a], [b]) => a < b ? -1 : a > b ? 1 : 0);
}

async function withStore(
  make: () => Promise<BackendFixture>,
  fn: (store: Store, fx: BackendFixture) => Promise<void>,
): Promise<void> {
  const fx = await make();
  try {
    const store = await openStore(fx.descriptor);
    try {
      await fn(store, fx);
    } finally {
      await store.close();
    }
    await fx.cleanup();
    assert.deepEqual(await fx.rawKeys(), [], "the test left state behind");
  } finally {
    await fx.cleanup();
  }
}

/** Keys of the keyed state a pipeline stored for one stage. */
function stateKeys(keys: string[], name: string, stage: string): string[] {
  return keys.filter((k) => k.startsWith(`sluice/state/${name}/${stage}/`));
}

/** Registers the suite for one backend; `label` names it in the test names. */
export function stateBackendSuite(label: string, make: () => Promise<BackendFixture>): void {
  Deno.test(`${label} as state backend: Pipeline.scale() 2 → 3 mid-stream keeps windowed per-key results exact`, async () => {
    await withStore(make, async (store, fx) => {
      const count = 8000;
      const expected = expectedWindows(0, count);
      const run = async (mode: "inline" | "workers", scale: boolean) => {
        const name = uid("scale");
        const out = collect<WindowOut>();
        const dead = memoryDeadLetters();
        const p = windowedPipeline({
          name,
          mode,
          state: store,
          source: steady({
            from: 0,
            to: count,
            keys: KEYS,
            stepMs: STEP_MS,
            perPull: 70,
            delayMs: scale ? 4 : 0,
          }),
          sizeMs: SIZE_MS,
          parallelism: 2,
          // Room for the source to keep pulling while checkpoints are taken: a pull is under way
          // when the rescale pauses it, and its records wait behind the pause.
          capacity: 64,
          windows: out.sink,
          deadLetter: dead,
        });
        const running = p.run();
        running.catch(() => {});
        let firedBefore = 0;
        if (scale) {
          // Scale once windows have fired: records are flowing, and most are still to come.
          await until("for a first window", async () => (await out.values()).length > 0);
          await p.scale("win", 3);
          firedBefore = (await out.values()).length;
        }
        const summary = await running;
        const values = await out.values();
        await out.clear();
        assert.deepEqual(dead.entries, [], "no record may be late or dead-lettered");
        if (scale) {
          const instances = p.counters().win?.instances ?? [];
          assert.equal(instances.length, 3);
          assert.ok(instances.every((c) => c.in > 0), "all three instances processed records");
          assert.ok(firedBefore < values.length / 2, `scaled too late: ${firedBefore} fired`);
          assert.equal(summary.stages.win?.restarts, 0);
        }
        const keys = stateKeys(await fx.rawKeys(), name, "win");
        assert.ok(keys.includes(`sluice/state/${name}/win/names`), "state index not stored");
        assert.ok(keys.length > KEYS / 2, `too few partitions stored: ${keys.length}`);
        return byWindow(values);
      };
      const inline = await run("inline", false);
      assert.deepEqual(sorted(inline.results), sorted(expected));
      assert.equal(inline.duplicates, 0);
      const scaled = await run("workers", true);
      assert.deepEqual(sorted(scaled.results), sorted(expected));
      assert.equal(scaled.duplicates, 0, "a rescale replays nothing");
    });
  });

  Deno.test(`${label} as state backend: a window instance that crashes mid-stream resumes from its checkpoint exactly`, async () => {
    await withStore(make, async (store, fx) => {
      const count = 8000;
      const dir = await Deno.makeTempDir({ prefix: "sluice-state-" });
      try {
        const name = uid("crash");
        const out = collect<WindowOut>();
        const dead = memoryDeadLetters();
        const summary = await windowedPipeline({
          name,
          mode: "workers",
          state: store,
          source: steady({
            from: 0,
            to: count,
            keys: KEYS,
            stepMs: STEP_MS,
            perPull: 70,
            delayMs: 2,
          }),
          windowStage: crashingWindowRef(windowRef(SIZE_MS).config, count / 2, `${dir}/marker`),
          sizeMs: SIZE_MS,
          parallelism: 2,
          windows: out.sink,
          deadLetter: dead,
        }).run();
        const values = await out.values();
        await out.clear();
        assert.equal(summary.stages.win?.restarts, 1, "the window instance crashed once");
        assert.match(summary.failures[0]?.message ?? "", /injected failure at record 4000/);
        assert.deepEqual(dead.entries, []);
        // The restored state plus the replayed unacked input: no window lost or counted twice.
        const { results } = byWindow(values);
        assert.deepEqual(sorted(results), sorted(expectedWindows(0, count)));
        assert.ok(stateKeys(await fx.rawKeys(), name, "win").length > 0);
      } finally {
        await Deno.remove(dir, { recursive: true });
      }
    });
  });

  Deno.test(`${label} as state backend: restoreState resumes per-key aggregates of an earlier run`, async () => {
    await withStore(make, async (store, fx) => {
      const name = uid("resume");
      const half = 3000;
      const run = async (from: number, to: number, restoreState: boolean, parallelism: number) => {
        const out = collect<{ key: string; sum: number; count: number }>();
        const dead = memoryDeadLetters();
        await totalsPipeline(name, store, { restoreState, from, to, parallelism, out, dead }).run();
        const values = await out.values();
        await out.clear();
        assert.deepEqual(dead.entries, []);
        const last: Record<string, { sum: number; count: number }> = {};
        for (const { key, sum, count } of values) {
          if (!last[key] || last[key].count < count) last[key] = { sum, count };
        }
        return last;
      };
      const sums = (from: number, to: number) => {
        const out: Record<string, { sum: number; count: number }> = {};
        for (let id = from; id < to; id++) {
          const r = record(id, KEYS, STEP_MS);
          const t = out[r.key!] ??= { sum: 0, count: 0 };
          t.sum += r.value.n;
          t.count++;
        }
        return out;
      };
      assert.deepEqual(await run(0, half, false, 2), sums(0, half));
      const stored = stateKeys(await fx.rawKeys(), name, "sum");
      assert.ok(stored.some((k) => /\/sum\/aggregate\/\d+$/.test(k)), "aggregates not stored");
      // Resumed with another parallelism: partitions land on other instances, state follows.
      assert.deepEqual(await run(half, 2 * half, true, 3), sums(0, 2 * half));
      // Without restoreState, the same name starts from nothing.
      assert.deepEqual(await run(half, 2 * half, false, 2), sums(half, 2 * half));
    });
  });

  Deno.test(`${label} as state backend: a process killed with SIGKILL is resumed by restoreState in another`, async () => {
    await withStore(make, async (store, fx) => {
      const dir = await Deno.makeTempDir({ prefix: "sluice-state-" });
      try {
        const name = uid("killed");
        const first = 3050; // mid-window: window [3000, 3100) is open when the process dies
        const count = 6000;
        const positionPath = `${dir}/position`;
        const windowsPath = `${dir}/windows.ndjson`;
        const totalsPath = `${dir}/totals.ndjson`;
        const child = new Deno.Command(Deno.execPath(), {
          args: [
            "run",
            "-A",
            "--config",
            new URL("../../deno.json", import.meta.url).pathname,
            new URL("./fixtures/state_child.ts", import.meta.url).pathname,
            JSON.stringify({
              store: fx.descriptor,
              name,
              positionPath,
              windowsPath,
              totalsPath,
              to: first,
              keys: KEYS,
              stepMs: STEP_MS,
              sizeMs: SIZE_MS,
              parallelism: 2,
            }),
          ],
          stdout: "null",
          stderr: "piped",
        }).spawn();
        let exited = false;
        const status = child.status.finally(() => exited = true);
        const stderr = new Response(child.stderr).text();
        try {
          // Every record acked: each ack waited for a stored checkpoint holding its effects. (Killed
          // earlier, between a stored checkpoint and the source's commit of the input it holds, the
          // next run would replay that input into state that has it: source positions are not part
          // of checkpoints, so across processes state is exact only for committed input.)
          await until("for the child to commit its input", async () => {
            if (exited) throw new Error(`the child exited early: ${await stderr}`);
            return await Deno.readTextFile(positionPath).then(
              (t) => t === String(first),
              () => false,
            );
          }, 30_000);
          // The windows the last watermark fired leave the stored state only once their results
          // were acked downstream (written, and held by a checkpoint of the totals).
          await until("for the fired windows to leave the stored state", async () => {
            const open = await openWindows(store, name);
            return open.length > 0 && open.every((w) => w.s === 3000);
          });
        } finally {
          if (!exited) child.kill("SIGKILL");
        }
        assert.equal((await status).signal, "SIGKILL");
        await stderr;

        // What the dead process left on the server: the index, the partitions, the open window.
        const keys = stateKeys(await fx.rawKeys(), name, "win");
        assert.ok(keys.includes(`sluice/state/${name}/win/names`), "state index not stored");
        assert.ok(keys.some((k) => /\/win\/window\/\d+$/.test(k)), "no partition stored");
        assert.equal(
          (await openWindows(store, name)).reduce((n, w) => n + w.a.count, 0),
          first - 3000,
          "the stored open windows hold exactly the records of the open window",
        );
        assert.ok(stateKeys(await fx.rawKeys(), name, "totals").length > 0, "no totals stored");

        const windows = collect<WindowOut>();
        const totals = collect<TotalOut>();
        const dead = memoryDeadLetters();
        await windowedPipeline({
          name,
          mode: "workers",
          state: store,
          restoreState: true,
          source: steady({
            from: 0,
            to: count,
            keys: KEYS,
            stepMs: STEP_MS,
            perPull: 70,
            delayMs: 0,
            positionPath,
          }),
          sizeMs: SIZE_MS,
          parallelism: 3,
          windows: windows.sink,
          totals: totals.sink,
          deadLetter: dead,
        }).run();
        const before = await fileSink<WindowOut>(windowsPath).values();
        const after = await windows.values();
        const finals = finalTotals(await totals.values());
        await windows.clear();
        await totals.clear();
        assert.deepEqual(dead.entries, []);
        assert.ok(before.length > 0 && after.length > 0, "both runs fired windows");
        assert.ok(
          after.some((w) => w.windowStart === 3000),
          "the window open at the kill fired in the second run",
        );
        const { results, duplicates } = byWindow([...before, ...after]);
        assert.deepEqual(sorted(results), sorted(expectedWindows(0, count)));
        assert.equal(duplicates, 0, "nothing was replayed: every record was acked before the kill");
        assert.deepEqual(finals, expectedTotals(count));
      } finally {
        await Deno.remove(dir, { recursive: true });
      }
    });
  });
}

/**
 * The open windows a pipeline's window stage ("win") stored, read through the store. They are
 * kept as the window processor keeps them: per partition, `[group, windows][]`, each window
 * `{ s, e, a: accumulators, f }`.
 */
async function openWindows(store: Store, name: string) {
  type Win = { s: number; e: number; a: { sum: number; count: number } };
  const open: Win[] = [];
  for await (const [key, list] of store.scan<[string, Win[]][]>(`sluice/state/${name}/win/`)) {
    if (/\/window\/\d+$/.test(key)) { for (const [, wins] of list) open.push(...wins); }
  }
  return open;
}

/** Records [from, to) → keyBy → aggregate (sum, count per key), named "sum" → collector. */
function totalsPipeline(name: string, state: StateBackend, o: {
  restoreState: boolean;
  from: number;
  to: number;
  parallelism: number;
  out: Collector<{ key: string; sum: number; count: number }>;
  dead: DeadLetterSink;
}) {
  const { restoreState, from, to, parallelism, out } = o;
  const p = pipeline({
    name,
    mode: "workers",
    signals: false,
    state,
    restoreState,
    checkpointMs: 50,
    deadLetter: o.dead,
  });
  p.from(steady({ from, to, keys: KEYS, stepMs: STEP_MS, perPull: 70, delayMs: 0 }))
    .keyBy()
    .via(aggregate<Ev>({ sum: { op: "sum", field: "n" }, count: { op: "count" } }), {
      name: "sum",
      parallelism,
    })
    .to(out.sink as StageRef<unknown, never>);
  return p;
}
