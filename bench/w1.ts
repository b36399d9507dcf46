// Benchmark W1: revenue per SKU per 1-second event-time window over an NDJSON file of e-commerce
// events — examples/revenue_by_sku.ts (Sluice, workers, parallelism 2 for decoding and windowing)
// against the same job in plain Node streams (bench/_w1_streams.ts), in the same run, on the same
// file. Both outputs must be the same (windowStart, sku, revenue to 1e-6) multiset, or the
// benchmark exits with status 1.
//
//   deno run -A bench/w1.ts [--count N] [--quick] [--repeat R] [--parallelism P] [--mode M]
//
// The events file is generated once per count and cached in .sluice/bench/. See bench/README.md.
import { loadavg } from "node:os";
import process from "node:process";
import { parseArgs } from "node:util";
import { writeEvents } from "../examples/generate_events.ts";
import { revenueBySku, type RevenueReport } from "../examples/revenue_by_sku.ts";
import { streamsRevenue } from "./_w1_streams.ts";
import { median } from "./_common.ts";
import { threadReport, threadTimes } from "./_threads.ts";

const { values: args } = parseArgs({
  args: Deno.args,
  options: {
    count: { type: "string" },
    quick: { type: "boolean", default: false },
    repeat: { type: "string" },
    parallelism: { type: "string", default: "2" },
    mode: { type: "string", default: "workers" },
  },
});
const count = Number(args.count ?? (args.quick ? 100_000 : 1_000_000));
const repeat = Number(args.repeat ?? (args.quick ? 1 : 3));
const parallelism = Number(args.parallelism);
const mode = args.mode;
for (const [name, v] of [["count", count], ["repeat", repeat], ["parallelism", parallelism]]) {
  if (!Number.isInteger(v) || (v as number) < 1) {
    console.error(`Cannot run benchmark: --${name} is ${v}, not a positive integer`);
    Deno.exit(2);
  }
}
if (mode !== "workers" && mode !== "inline") {
  console.error(`Cannot run benchmark: --mode is "${mode}", not "workers" or "inline"`);
  Deno.exit(2);
}

const SEED = 42;
const dir = ".sluice/bench";
const input = `${dir}/w1-events-${count}-${SEED}.ndjson`;
const out = await Deno.makeTempDir({ prefix: "sluice-w1-" });

/** Generates the input unless a complete copy is cached (its size is kept beside it). */
async function ensureInput(): Promise<void> {
  const meta = `${input}.bytes`;
  const want = await Deno.readTextFile(meta).catch(() => "");
  const have = await Deno.stat(input).then((s) => String(s.size), () => "missing");
  if (want !== "" && want === have) return;
  const t0 = performance.now();
  const stats = await writeEvents(input, { count, seed: SEED });
  await Deno.writeTextFile(meta, String(stats.bytes));
  const mb = (stats.bytes / 1e6).toFixed(1);
  const s = ((performance.now() - t0) / 1000).toFixed(1);
  console.log(`generated ${stats.lines} events (${mb} MB) in ${s} s → ${input}`);
}

/** The output as sorted `windowStart|sku|revenue` lines, revenue rounded to 1e-6. */
async function canonical(path: string): Promise<string[]> {
  const text = await Deno.readTextFile(path);
  return text.split("\n").filter((l) => l !== "").map((l) => {
    const { windowStart, sku, revenue } = JSON.parse(l);
    return `${windowStart}|${sku}|${(Math.round(revenue * 1e6) / 1e6).toFixed(6)}`;
  }).sort();
}

const rate = (n: number, ms: number) => Math.round(n / (ms / 1000));
const fmt = (n: number) => n.toLocaleString("en-US");

const startLoad = loadavg()[0]!;
await ensureInput();
console.log(
  `W1: ${fmt(count)} events, ${repeat} run(s) each, ${navigator.hardwareConcurrency} cores, ` +
    `Sluice ${mode} parallelism ${parallelism}`,
);

const sluiceMs: number[] = [];
const streamsMs: number[] = [];
// CPU seconds of the whole process (all threads) per run: less sensitive than wall time to other
// processes sharing the cores.
const sluiceCpu: number[] = [];
const streamsCpu: number[] = [];
const cpu = (since: { user: number; system: number }) => {
  const d = process.cpuUsage(since);
  return (d.user + d.system) / 1e6;
};
let last: RevenueReport | undefined;
let threads = "";
let streamsIn = 0;
let streamsMalformed = 0;
let mismatch = "";
for (let i = 0; i < repeat; i++) {
  // Alternate the order, so that neither side always runs on a warmer machine.
  const order = i % 2 === 0 ? ["sluice", "streams"] : ["streams", "sluice"];
  for (const which of order) {
    const c0 = process.cpuUsage();
    if (which === "sluice") {
      const before = threadTimes();
      const during = threadTimes();
      const timer = setInterval(() => threadTimes(during), 100);
      last = await revenueBySku({
        input,
        output: `${out}/sluice.ndjson`,
        deadLetters: `${out}/dead.ndjson`,
        parallelism,
        mode,
      });
      clearInterval(timer);
      threads = threadReport(before, threadTimes(during));
      sluiceMs.push(last.elapsedMs);
      sluiceCpu.push(cpu(c0));
    } else {
      const t0 = performance.now();
      const r = await streamsRevenue(input, `${out}/streams.ndjson`);
      streamsMs.push(performance.now() - t0);
      streamsCpu.push(cpu(c0));
      streamsIn = r.recordsIn;
      streamsMalformed = r.malformed;
    }
  }
  const [a, b] = await Promise.all([
    canonical(`${out}/sluice.ndjson`),
    canonical(`${out}/streams.ndjson`),
  ]);
  if (a.length !== b.length) mismatch = `${a.length} vs ${b.length} output lines`;
  else {
    const at = a.findIndex((line, j) => line !== b[j]);
    if (at >= 0) mismatch = `line ${at}: sluice ${a[at]} vs streams ${b[at]}`;
  }
  if (last!.recordsIn !== streamsIn || last!.deadLetters !== streamsMalformed) {
    mismatch ||= `records in ${last!.recordsIn} vs ${streamsIn}, ` +
      `dead letters ${last!.deadLetters} vs malformed ${streamsMalformed}`;
  }
  if (mismatch) break;
}
await Deno.remove(out, { recursive: true });

if (mismatch || !last) {
  console.error(`W1 FAILED: the outputs differ (${mismatch})`);
  Deno.exit(1);
}
const sMs = median(sluiceMs);
const nMs = median(streamsMs);
const s = rate(last.recordsIn, sMs);
const n = rate(streamsIn, nMs);
console.log(
  `outputs identical: ${fmt(last.windowsOut)} (window, sku) lines, ` +
    `${fmt(last.deadLetters)} malformed lines dead-lettered`,
);
const runs = (xs: number[]) => xs.map((x) => (x / 1000).toFixed(2)).join(", ");
const cpus = (xs: number[]) => `${median(xs).toFixed(2)} CPU s`;
console.log(
  `sluice  ${fmt(s).padStart(11)} records/s  (median of ${runs(sluiceMs)} s; ${cpus(sluiceCpu)})`,
);
console.log(
  `streams ${fmt(n).padStart(11)} records/s  (median of ${runs(streamsMs)} s; ${cpus(streamsCpu)})`,
);
console.log(`ratio   ${(s / n).toFixed(2)}× (goal ≥ 1.5× on 2 cores)`);
console.log(
  `cpu     Sluice used ${(median(sluiceCpu) / median(streamsCpu)).toFixed(2)}× the CPU time of ` +
    `streams (all threads), so ${navigator.hardwareConcurrency} busy cores would give at most ` +
    `${(navigator.hardwareConcurrency * median(streamsCpu) / median(sluiceCpu)).toFixed(2)}×`,
);
// The 1-minute load average before the first run: other processes on the cores skew the figures
// (Sluice more, as it needs both cores at once).
if (startLoad > 0.5) {
  console.log(
    `warning: the load average was ${startLoad.toFixed(1)} on ${navigator.hardwareConcurrency} ` +
      `cores before the runs: other processes shared the CPUs; compare CPU s rather than wall time`,
  );
}
// Where Sluice spent its time: batch-processing time per stage, summed over instances.
const busy = Object.entries(last.summary.stages)
  .map(([name, c]) => `${name} ${(c.latencyMs / 1000).toFixed(2)} s/${c.batches} batches`)
  .join(", ");
console.log(`sluice stage busy time (last run): ${busy}`);
if (threads) {
  console.log(
    `sluice CPU s per thread (last run; workers in start order: source, decoders, windows, sink): ` +
      threads,
  );
}
