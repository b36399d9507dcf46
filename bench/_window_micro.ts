// Microbenchmark of the window stage alone, shaped like W1's window worker: ~120 000 keyed
// records over 200 SKUs, about one per (second, SKU), slightly out of order, a 1 s tumbling sum,
// and a watermark advance every 450 records (3 s behind the highest ts). It opens `windowStage`
// with a minimal StageContext (real KeyedState), so only the stage's own work is measured.
//
//   deno run -A bench/_window_micro.ts [--repeat 7] [--records 120000]
//
// Prints the time of each run, the median, and a digest of the outputs and late records, so that
// two versions of the stage can be checked to behave the same on this input.
import { parseArgs } from "node:util";
import type { StreamRecord } from "../actors/record.ts";
import type { StageContext } from "../actors/stage.ts";
import { KeyedState } from "../actors/keyed_state.ts";
import { partitionOf } from "../actors/partitioner.ts";
import { parseConfig } from "../actors/_config.ts";
import { windowStage } from "../processors/window.ts";

const args = parseArgs({
  args: Deno.args,
  options: {
    repeat: { type: "string", default: "7" },
    records: { type: "string", default: "120000" },
  },
});
const repeat = Number(args.values.repeat);
const total = Number(args.values.records);
const keys = 200;
const batch = 450;
const lagMs = 3000;
const partitions = 64;

/** Deterministic PRNG (mulberry32), so that every run sees the same input. */
function random(seed: number): () => number {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** One record per (second, SKU), a second one 13 % of the time; arrival jittered by ≤ 1.5 s. */
function makeInput(): StreamRecord<{ revenue: number }>[] {
  const rand = random(42);
  const timed: [number, StreamRecord<{ revenue: number }>][] = [];
  const t0 = 1_767_225_600_000;
  for (let second = 0; timed.length < total; second++) {
    for (let k = 0; k < keys && timed.length < total; k++) {
      const n = rand() < 0.13 ? 2 : 1;
      for (let i = 0; i < n; i++) {
        const ts = t0 + second * 1000 + Math.floor(rand() * 1000);
        // A few records arrive 10 s late: past the watermark, they go to the "late" output.
        const arrival = rand() < 0.002 ? ts + 10_000 : ts + rand() * 1500;
        const revenue = Math.round(rand() * 10_000) / 100;
        timed.push([arrival, { key: `sku-${k}`, value: { revenue }, ts }]);
      }
    }
  }
  timed.sort((a, b) => a[0] - b[0]);
  return timed.map(([, record]) => record);
}

/** FNV-1a over strings, for a digest of what the stage produced. */
function fnv(hash: number, text: string): number {
  for (let i = 0; i < text.length; i++) hash = Math.imul(hash ^ text.charCodeAt(i), 16777619);
  return hash >>> 0;
}

interface Run {
  ms: number;
  emitted: number;
  late: number;
  digest: number;
}

async function runOnce(original: StreamRecord<unknown>[], digest: boolean): Promise<Run> {
  // Fresh records every run, as a worker gets them from its channel (keys not hashed yet).
  const input = structuredClone(original);
  const config = parseConfig(windowStage, "window", {
    type: "tumbling",
    sizeMs: 1000,
    aggregate: { revenue: { op: "sum", field: "revenue" } },
  });
  const emitted: StreamRecord<unknown>[] = [];
  const late: StreamRecord<unknown>[] = [];
  const states = new Map<string, KeyedState<unknown>>();
  let watermark = -Infinity;
  const ctx: StageContext<unknown> = {
    stage: "window",
    instance: 0,
    parallelism: 1,
    partitions,
    get watermark() {
      return watermark;
    },
    signal: new AbortController().signal,
    now: () => 0,
    emit: (record) => void emitted.push(record),
    emitTo: (_output, record) => void late.push(record),
    deadLetter: () => {},
    keyed: <V>(name = "default") => {
      let state = states.get(name);
      if (!state) states.set(name, state = new KeyedState<unknown>(partitions));
      return state as KeyedState<V>;
    },
    partitionOf: (key) => partitionOf(key, partitions),
  };
  const start = performance.now();
  const stage = await windowStage.open(config, ctx);
  let maxTs = -Infinity;
  for (let i = 0; i < input.length; i++) {
    const record = input[i]!;
    await stage.process(record, ctx);
    if (record.ts! > maxTs) maxTs = record.ts!;
    if ((i + 1) % batch === 0 && maxTs - lagMs > watermark) {
      watermark = maxTs - lagMs;
      await stage.onWatermark?.(watermark, ctx);
    }
  }
  await stage.flush?.(ctx);
  const ms = performance.now() - start;
  let hash = 2166136261;
  if (digest) {
    for (const record of emitted) hash = fnv(hash, JSON.stringify(record));
    hash = fnv(hash, "|late|");
    for (const record of late) hash = fnv(hash, JSON.stringify(record));
  }
  return { ms, emitted: emitted.length, late: late.length, digest: hash };
}

const input = makeInput();
const times: number[] = [];
let first: Run | undefined;
for (let i = 0; i < repeat; i++) {
  const run = await runOnce(input, i === 0);
  first ??= run;
  times.push(run.ms);
  console.log(`run ${i + 1}: ${run.ms.toFixed(1)} ms`);
}
const sorted = [...times].sort((a, b) => a - b);
const median = sorted[Math.floor(sorted.length / 2)]!;
console.log(
  `window micro: ${input.length} records, ${first!.emitted} results, ${first!.late} late, ` +
    `digest ${first!.digest.toString(16)}; median ${median.toFixed(1)} ms, ` +
    `best ${sorted[0]!.toFixed(1)} ms over ${repeat} runs`,
);
