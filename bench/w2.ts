// Benchmark W2: generated e-commerce events → filter (purchases) → map (revenue) → keyed sum per
// sku, in Sluice (workers fused, workers unfused, inline) and in Node streams, in the same run:
// in this thread (warm after the first runs: the goal's baseline) and in a fresh worker each run
// (as cold as a Sluice worker).
// Also: restart latency of a stateless stage, and peak RSS under a slow sink.
//
//   deno run -A bench/w2.ts [--count N] [--quick] [--repeat R]
//
// --count N   events per run (default 1 000 000); --quick: 100 000 events, 1 run
// --repeat R  runs of each variant, interleaved; the median is reported (default 3); a variant
//             whose runs already took 30 s is not run again
//
// See bench/README.md for what each figure means.
import { pipeline, type RunSummary, stage, type StageOptions } from "../actors/mod.ts";
import { filter } from "../processors/filter.ts";
import { map } from "../processors/map.ts";
import {
  type EcommerceEvent,
  generator,
  type GeneratorOptions,
} from "../connectors/generator/mod.ts";
import type { Revenue, SkuTotal } from "./_stages.ts";
import { canonical, type Result, streams as streamsOn } from "./_w2_streams.ts";

// ---------------------------------------------------------------------------------------------
// Flags

function flag(name: string): string | undefined {
  const i = Deno.args.indexOf(`--${name}`);
  if (i < 0) return undefined;
  return Deno.args[i + 1];
}

const quick = Deno.args.includes("--quick");
const count = Number(flag("count") ?? (quick ? 100_000 : 1_000_000));
const repeat = Number(flag("repeat") ?? (quick ? 1 : 3));
if (!Number.isInteger(count) || count < 1) throw new RangeError(`--count: ${flag("count")}`);
if (!Number.isInteger(repeat) || repeat < 1) throw new RangeError(`--repeat: ${flag("repeat")}`);

const SEED = 2024;
const SKUS = 100;
const gen: GeneratorOptions = { count, seed: SEED, skus: SKUS };
const stages = new URL("./_stages.ts", import.meta.url);
const ref = <I, O>(name: string, config: unknown, kind: "processor" | "sink" = "processor") =>
  stage<I, O>(stages, config, { kind, export: name });

// ---------------------------------------------------------------------------------------------
// Sluice variants

async function sluice(mode: "workers" | "inline", fuse: boolean, n = count): Promise<Result> {
  const path = await Deno.makeTempFile({ prefix: "sluice-w2-", suffix: ".json" });
  const opts: StageOptions = fuse ? {} : { fuse: false };
  const p = pipeline({ mode, signals: false, name: "w2" });
  p.from(generator({ ...gen, count: n }), opts)
    .via(filter((e: EcommerceEvent) => e.type === "purchase"), opts)
    .via(map((e: EcommerceEvent): Revenue => ({ sku: e.sku, revenue: e.price * e.qty })), opts)
    .keyBy()
    .via(ref<Revenue, SkuTotal>("keyedRevenue", {}), opts)
    .to(ref<SkuTotal, never>("totalsSink", { path }, "sink"), {
      ...opts,
      permissions: { write: [path] },
    });
  const started = performance.now();
  await p.run();
  const seconds = (performance.now() - started) / 1000;
  const totals = canonical(JSON.parse(await Deno.readTextFile(path)));
  await Deno.remove(path);
  return { seconds, totals };
}

// ---------------------------------------------------------------------------------------------
// Node streams baseline (bench/_w2_streams.ts): in this thread, and in a fresh worker.

const streams = (n = count) => streamsOn({ ...gen, count: n });

/**
 * The baseline run once in a fresh worker, as cold as a Sluice worker (no code warmed up by
 * earlier runs): the time is its run's own, measured in the worker, without the worker's start.
 */
async function coldStreams(n = count): Promise<Result> {
  const worker = streamsWorker();
  try {
    return await inWorker(worker, n);
  } finally {
    worker.terminate();
  }
}

function streamsWorker(): Worker {
  return new Worker(new URL("./_w2_streams_worker.ts", import.meta.url), { type: "module" });
}

/** One run of the baseline in `worker`: its time measured there, without the messages. */
function inWorker(worker: Worker, n: number): Promise<Result> {
  return new Promise<Result>((resolve, reject) => {
    worker.onmessage = (e: MessageEvent<Result>) => resolve(e.data);
    worker.onerror = (e) => {
      e.preventDefault();
      reject(new Error(`the streams worker failed: ${e.message}`));
    };
    worker.postMessage({ ...gen, count: n });
  });
}

/**
 * The baseline in a worker of its own, kept for the whole benchmark: warm after its first runs,
 * like the baseline in this thread, but with no other variant's code or garbage in its isolate
 * (Sluice inline runs here, and shares the generator's code with the baseline).
 */
const warmWorker = streamsWorker();
const ownWorkerStreams = (n = count) => inWorker(warmWorker, n);

// ---------------------------------------------------------------------------------------------
// Restart latency: a stateless stage that crashes on `failures` records, once each.

async function restarts(failures: number): Promise<{ summary: RunSummary; seconds: number }> {
  const dir = await Deno.makeTempDir({ prefix: "sluice-w2-crash-" });
  const n = failures * 2000;
  const ids = Array.from({ length: failures }, (_, i) => Math.floor((i + 0.5) * (n / failures)));
  const started = performance.now();
  try {
    const summary = await pipeline({ mode: "workers", signals: false, name: "w2-restart" })
      .from(generator({ ...gen, count: n }))
      .via(ref<EcommerceEvent, EcommerceEvent>("crashOnce", { ids, dir }), {
        fuse: false,
        // Each crash is isolated (a window of 1 ms): this measures a restart, not the backoff
        // that repeated crashes within `withinMs` would add.
        maxRestarts: failures + 1,
        withinMs: 1,
        permissions: { read: [dir], write: [dir] },
      })
      .to(ref<EcommerceEvent, never>("nullSink", {}, "sink"))
      .run();
    return { summary, seconds: (performance.now() - started) / 1000 };
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

// ---------------------------------------------------------------------------------------------
// Memory: RSS sampled every 20 ms, at rest and under a slow sink.

function sampler() {
  let peak = 0;
  const samples: number[] = [];
  const take = () => {
    const rss = Deno.memoryUsage().rss;
    samples.push(rss);
    if (rss > peak) peak = rss;
  };
  take();
  const timer = setInterval(take, 20);
  return {
    stop() {
      clearInterval(timer);
      take();
      const sorted = [...samples].sort((a, b) => a - b);
      return { peak, median: sorted[Math.floor(sorted.length / 2)]!, samples: samples.length };
    },
  };
}

/** Heartbeat period of the memory run, ms: the most by which two workers' counters can differ. */
const SKEW_MS = 20;

async function memory(): Promise<{
  baseline: number;
  peak: number;
  produced: number;
  written: number;
  inFlightMax: number;
}> {
  const idle = sampler();
  await new Promise((r) => setTimeout(r, 500));
  const baseline = idle.stop().median;
  // Counters ride on heartbeats, each worker on its own clock: a short period keeps the skew
  // between the source's and the sink's reports (which inflates produced − written) small.
  const p = pipeline({
    mode: "workers",
    signals: false,
    name: "w2-slow",
    heartbeatMs: SKEW_MS,
  });
  p.from(generator({ ...gen, count: 10_000_000 }))
    .via(map((e: EcommerceEvent): Revenue => ({ sku: e.sku, revenue: e.price * e.qty })))
    // In its own worker, so records cross a channel and credits hold the source back.
    .to(ref<Revenue, never>("slowSink", { delayMs: 10 }, "sink"), { fuse: false });
  const busy = sampler();
  const running = p.run();
  // Records produced but not yet written, from the counters the workers report every SKEW_MS.
  let inFlightMax = 0, produced = 0, written = 0;
  const watch = setInterval(() => {
    const c = p.counters();
    produced = c.generator?.instances[0]?.out ?? 0;
    written = c.slow?.instances[0]?.in ?? 0;
    inFlightMax = Math.max(inFlightMax, produced - written);
  }, 20);
  await new Promise((r) => setTimeout(r, 3000));
  clearInterval(watch);
  await p.stop();
  await running;
  const { peak } = busy.stop();
  return { baseline, peak, produced, written, inFlightMax };
}

// ---------------------------------------------------------------------------------------------
// Report

const MiB = 1024 * 1024;
const fmtInt = (n: number) => Math.round(n).toLocaleString("en-US");

function percentile(values: number[], q: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)]!;
}

function median(values: number[]): number {
  return percentile(values, 0.5);
}

const cpus = navigator.hardwareConcurrency;
console.log(
  `W2: ${fmtInt(count)} events → filter(purchase) → map(revenue) → keyed sum per sku ` +
    `(${SKUS} skus); median of ${repeat} run(s); ${cpus} cores; Deno ${Deno.version.deno}`,
);

// 1. Restart latency and memory first, while the process is small.
const FAILURES = 30;
const { summary: restartSummary, seconds: restartSeconds } = await restarts(FAILURES);
const latencies = restartSummary.restartLatencies;
const mem = await memory();

// 2. Throughput. A short warm-up of every variant, then the variants interleaved `repeat` times.
const variants: [string, (n?: number) => Promise<Result>][] = [
  ["Node streams (baseline)", (n) => streams(n)],
  ["Node streams, own worker", (n) => ownWorkerStreams(n)],
  ["Node streams, cold", (n) => coldStreams(n)],
  ["Sluice workers, fused", (n) => sluice("workers", true, n)],
  ["Sluice workers, unfused", (n) => sluice("workers", false, n)],
  ["Sluice inline", (n) => sluice("inline", true, n)],
];
/**
 * A pause before each timed run, the same for every variant: the threads of the run before (five
 * workers after an unfused run) are torn down and their memory freed meanwhile, not during the
 * next run, which that work would slow by whatever it happened to overlap.
 */
const settle = () => new Promise((resolve) => setTimeout(resolve, SETTLE_MS));
const SETTLE_MS = 300;
const warmup = Math.min(count, 20_000);
await streams(warmup);
await ownWorkerStreams(warmup);
await sluice("workers", true, warmup);
await sluice("inline", true, warmup);

// Each variant's fixed cost: a run of one event (start, drain, stop), median of 3.
const fixed = new Map<string, number>();
for (const [name, run] of variants) {
  const seconds: number[] = [];
  for (let i = 0; i < 3; i++) {
    await settle();
    seconds.push((await run(1)).seconds);
  }
  fixed.set(name, median(seconds));
}
const emptyMs = fixed.get("Sluice workers, fused")! * 1000;

const times = new Map<string, number[]>(variants.map(([name]) => [name, []]));
const totals = new Map<string, string>();
// A variant that already took this long is not repeated: the whole bench stays bounded.
const BUDGET_S = 30;
for (let r = 0; r < repeat; r++) {
  for (const [name, run] of variants) {
    const spent = times.get(name)!.reduce((a, b) => a + b, 0);
    if (r > 0 && spent > BUDGET_S) continue;
    await settle();
    const result = await run();
    times.get(name)!.push(result.seconds);
    const seen = totals.get(name);
    if (seen !== undefined && seen !== result.totals) {
      console.error(`FAIL: ${name} gave different totals on run ${r + 1}`);
      Deno.exit(1);
    }
    totals.set(name, result.totals);
  }
}

const baselineName = variants[0]![0];
const baselineRate = count / median(times.get(baselineName)!);
console.log("");
console.log(
  "| variant                  | time (s), median | records/s, median | vs streams | best records/s |",
);
console.log(
  "| ------------------------ | ---------------: | ----------------: | ---------: | -------------: |",
);
for (const [name] of variants) {
  const t = median(times.get(name)!);
  const best = count / Math.min(...times.get(name)!);
  const rate = count / t;
  const runs = times.get(name)!.length;
  console.log(
    `| ${name.padEnd(24)} | ${t.toFixed(3).padStart(16)} | ${fmtInt(rate).padStart(17)} | ${
      (rate / baselineRate).toFixed(2).padStart(9)
    }× | ${fmtInt(best).padStart(14)} |${runs < repeat ? ` ${runs} run(s): over budget` : ""}`,
  );
}

// Fused workers against the baseline in a worker: warm in one of its own, and as cold as a Sluice
// worker (the baseline's worker start not counted in either).
const fusedRate = count / median(times.get("Sluice workers, fused")!);
const against = (name: string) => (fusedRate / (count / median(times.get(name)!))).toFixed(2);
console.log("");
console.log(
  `Sluice workers, fused, against the baseline in its own worker: ${
    against("Node streams, own worker")
  }×; against the cold baseline: ${against("Node streams, cold")}× ` +
    `(the Sluice worker's start counted; the baseline's not)`,
);

// The same runs less each variant's fixed cost: how fast records flow once it has started.
const netRate = (name: string) =>
  count / Math.max(1e-6, median(times.get(name)!) - fixed.get(name)!);
console.log("");
console.log("After start-up (median time less the variant's 1-event run; not the goal's figure):");
console.log("");
console.log(
  "| variant                  | 1-event run (ms) | records/s after start-up | vs streams |",
);
console.log(
  "| ------------------------ | ---------------: | -----------------------: | ---------: |",
);
for (const [name] of variants) {
  console.log(
    `| ${name.padEnd(24)} | ${(fixed.get(name)! * 1000).toFixed(1).padStart(16)} | ${
      fmtInt(netRate(name)).padStart(24)
    } | ${(netRate(name) / netRate(baselineName)).toFixed(2).padStart(9)}× |`,
  );
}

// Steady state: the time per record from runs of `count` and of 4 × `count` events, in which the
// variant's start (its workers, their modules, its code's warm-up) cancels out; and the run length
// from which fused workers are ahead of the baseline. Not the goal's figure (that is the table
// above, at `count`); unfused is left out (a 4 × run takes too long).
const steadyVariants = variants.filter(([name]) => name !== "Sluice workers, unfused");
const long = 4 * count;
const longTimes = new Map<string, number[]>(steadyVariants.map(([name]) => [name, []]));
const longTotals = new Set<string>();
for (let r = 0; r < Math.min(repeat, 3); r++) {
  for (const [name, run] of steadyVariants) {
    await settle();
    const result = await run(long);
    longTimes.get(name)!.push(result.seconds);
    longTotals.add(result.totals);
  }
}
if (longTotals.size !== 1) {
  console.error(`FAIL: the ${fmtInt(long)}-event runs did not all produce the same totals`);
  Deno.exit(1);
}
/** Seconds per record and the start they leave (seconds), from the medians at count and long. */
const line = (name: string) => {
  const short = median(times.get(name)!), far = median(longTimes.get(name)!);
  const perRecord = (far - short) / (long - count);
  return { perRecord, start: short - perRecord * count };
};
const base = line(baselineName);
console.log("");
console.log(
  `Steady state (from the medians at ${fmtInt(count)} and ${fmtInt(long)} events; the goal's ` +
    `figure is the first table's):`,
);
console.log("");
console.log("| variant                  | ns per record | records/s | vs streams | start (ms) |");
console.log("| ------------------------ | ------------: | --------: | ---------: | ---------: |");
for (const [name] of steadyVariants) {
  const { perRecord, start } = line(name);
  console.log(
    `| ${name.padEnd(24)} | ${(perRecord * 1e9).toFixed(0).padStart(13)} | ${
      fmtInt(1 / perRecord).padStart(9)
    } | ${(base.perRecord / perRecord).toFixed(2).padStart(9)}× | ${
      (start * 1000).toFixed(0).padStart(10)
    } |`,
  );
}
const fused = line("Sluice workers, fused");
const crossover = fused.perRecord < base.perRecord
  ? `from about ${fmtInt((fused.start - base.start) / (base.perRecord - fused.perRecord))} events`
  : "never (slower per record)";
console.log("");
console.log(`Sluice workers, fused, is ahead of the baseline (main thread) ${crossover}`);

const expected = totals.get(baselineName)!;
const parsed = JSON.parse(expected) as SkuTotal[];
const purchases = parsed.reduce((n, t) => n + t.purchases, 0);
const mismatched = variants.filter(([name]) => totals.get(name) !== expected).map(([n]) => n);
console.log("");
if (mismatched.length > 0) {
  console.error(`FAIL: per-sku totals differ from the baseline in: ${mismatched.join(", ")}`);
  Deno.exit(1);
}
console.log(
  `OK: all ${variants.length} variants produced identical per-sku totals ` +
    `(${parsed.length} skus, ${fmtInt(purchases)} purchases, ` +
    `revenue ${fmtInt(parsed.reduce((n, t) => n + t.revenue, 0))} cents)`,
);

console.log("");
console.log(
  `Restart latency (stateless stage, ${FAILURES} injected crashes, failure → replacement ready): ` +
    `p50 ${percentile(latencies, 0.5).toFixed(0)} ms, p99 ${
      percentile(latencies, 0.99).toFixed(0)
    } ms, max ${Math.max(...latencies).toFixed(0)} ms over ${latencies.length} restarts ` +
    `(run ${restartSeconds.toFixed(1)} s, restarts counted ${
      restartSummary.stages.crashOnce?.restarts ?? 0
    })`,
);
if (latencies.length !== FAILURES) {
  console.error(`FAIL: expected ${FAILURES} restarts, measured ${latencies.length}`);
  Deno.exit(1);
}
console.log(
  `Memory (RSS every 20 ms): baseline ${(mem.baseline / MiB).toFixed(0)} MiB, peak under a ` +
    `slow sink (10 ms/batch, 3 s) ${(mem.peak / MiB).toFixed(0)} MiB, +${
      ((mem.peak - mem.baseline) / MiB).toFixed(0)
    } MiB; after 3 s the source had produced ${fmtInt(mem.produced)} of 10,000,000 events, ` +
    `the sink had written ${fmtInt(mem.written)}; at most ${
      fmtInt(mem.inFlightMax)
    } in flight (bound: (capacity 8 + 1 sealed + 1 open + 1 in write) × 512 = 5,632, plus ` +
    `what the sink writes in one ${SKEW_MS} ms report skew: 1,024)`,
);
console.log(
  `Fixed cost of a fused workers run (start its one worker, 1 event, drain, stop): ${
    emptyMs.toFixed(0)
  } ms (median of 3), included in the times above`,
);
warmWorker.terminate();
