/**
 * The Sluice demo: revenue per SKU from 200 000 e-commerce events, with no server at all.
 *
 * 1. Generates a deterministic NDJSON file of events into `.sluice/demo/events.ndjson`.
 * 2. Runs a pipeline, each stage in its own Web Worker (or inline with `--mode inline`):
 *    NDJSON file → keep purchases → revenue = price × qty → key by SKU → 1-second event-time
 *    tumbling window summing revenue → a Deno KV sink adding each window's revenue to its SKU in
 *    `.sluice/demo/results.kv`. The file source dead-letters malformed lines (with file and line)
 *    into `.sluice/demo/dead-letters.ndjson`.
 * 3. Reads the totals back from the KV file, checks them against a direct computation over the
 *    input, and prints records in/out per stage, the top 5 SKUs, dead letters and throughput.
 *
 * ```sh
 * deno task demo                      # = deno run -A examples/demo.ts
 * deno run -A examples/demo.ts --count 1000000 --mode inline
 * ```
 *
 * @module
 */
import { parseArgs } from "node:util";
import {
  type DeadLetter,
  filter,
  map,
  ndjsonDeadLetters,
  ndjsonFile,
  pipeline,
  type RunSummary,
  window,
} from "../mod.ts";
import { kvSink, KvStore } from "../mod.ts";
import { generateEvents, type ShopEvent, writeEvents } from "./generate_events.ts";

const { values: args } = parseArgs({
  args: Deno.args,
  options: {
    count: { type: "string", default: "200000" },
    seed: { type: "string", default: "42" },
    mode: { type: "string", default: "workers" },
  },
});
const count = Number(args.count);
const seed = Number(args.seed);
const mode = args.mode;
if (!Number.isInteger(count) || count < 1 || !Number.isInteger(seed)) {
  console.error("Cannot run demo: --count must be a positive integer and --seed an integer");
  Deno.exit(2);
}
if (mode !== "workers" && mode !== "inline") {
  console.error(`Cannot run demo: --mode must be "workers" or "inline", got "${mode}"`);
  Deno.exit(2);
}

const dir = ".sluice/demo";
const eventsPath = `${dir}/events.ndjson`;
const resultsPath = `${dir}/results.kv`;
const deadPath = `${dir}/dead-letters.ndjson`;
const fmt = (n: number) => n.toLocaleString("en-US");
const money = (n: number) =>
  n.toLocaleString("en-US", { minimumFractionDigits: 2, maximumFractionDigits: 2 });

// 1. Input.
let t0 = performance.now();
const generated = await writeEvents(eventsPath, { count, seed });
console.log(
  `Generated ${fmt(generated.lines)} events (${fmt(generated.purchases)} purchases, ` +
    `${generated.malformed} malformed lines, ${(generated.bytes / 1e6).toFixed(1)} MB) ` +
    `in ${(performance.now() - t0).toFixed(0)} ms → ${eventsPath}`,
);

// Start from an empty results file and dead-letter file, so reruns give the same output.
for (const path of [resultsPath, `${resultsPath}-wal`, `${resultsPath}-shm`, deadPath]) {
  await Deno.remove(path).catch(() => {});
}
const deadLetters: DeadLetter[] = [];
const deadFile = ndjsonDeadLetters(deadPath);

// 2. The pipeline.
const p = pipeline({
  name: "demo",
  mode,
  outOfOrdernessMs: 500, // events arrive up to ~255 ms out of order
  deadLetter: {
    write(entries) {
      deadLetters.push(...entries);
      return deadFile.write(entries);
    },
  },
});
// Large source batches: only ~12% of events are purchases, so downstream batches stay sizeable.
p.from(ndjsonFile<ShopEvent>({ path: eventsPath, tsField: "ts", chunkBytes: 1 << 20 }), {
  name: "events",
  batchSize: 2048,
})
  .via(filter((e: ShopEvent) => e.type === "purchase"), { name: "purchases", parallelism: 2 })
  .via(
    map((e: ShopEvent) => ({ sku: e.sku, revenue: e.price * e.qty })),
    { name: "revenue", parallelism: 2 },
  )
  .keyBy((v) => v.sku, { name: "bySku", parallelism: 2 })
  .via(
    window<{ sku: string; revenue: number }>({
      type: "tumbling",
      sizeMs: 1000,
      aggregate: { revenue: { op: "sum", field: "revenue" }, orders: { op: "count" } },
    }),
    { name: "window1s", parallelism: 2 },
  )
  .to(
    kvSink({ path: resultsPath, key: "key", mode: "increment", field: "revenue" }),
    { name: "kvSink" },
  );

t0 = performance.now();
const summary: RunSummary = await p.run();
const elapsedMs = performance.now() - t0;

// 3. Results, read back from the KV file.
const totals = new Map<string, number>();
{
  await using store = await KvStore.open(resultsPath);
  for await (const [sku, revenue] of store.scan<number>("SKU-")) totals.set(sku, revenue);
}

// The same totals computed directly from the generator, to show nothing was lost or doubled.
const expected = new Map<string, number>();
for (const { event } of generateEvents({ count, seed })) {
  if (event?.type === "purchase") {
    expected.set(event.sku, (expected.get(event.sku) ?? 0) + event.price * event.qty);
  }
}
const mismatches = [...expected].filter(([sku, v]) =>
  Math.abs((totals.get(sku) ?? NaN) - v) > 1e-6 * Math.max(1, Math.abs(v))
);

printSummary(summary);
console.log("\nTop 5 SKUs by revenue (read back from " + resultsPath + "):");
const top = [...totals].sort((a, b) => b[1] - a[1]).slice(0, 5);
top.forEach(([sku, revenue], i) => {
  console.log(`  ${i + 1}. ${sku}  ${money(revenue).padStart(14)}`);
});
const revenueTotal = [...totals.values()].reduce((a, b) => a + b, 0);
console.log(`  (${totals.size} SKUs, total revenue ${money(revenueTotal)})`);
console.log(`\nDead letters: ${deadLetters.length} → ${deadPath}`);
if (deadLetters[0]) console.log(`  e.g. ${deadLetters[0].error.message}`);
console.log(
  `Elapsed: ${(elapsedMs / 1000).toFixed(2)} s (${mode} mode), throughput ` +
    `${fmt(Math.round(generated.lines / (elapsedMs / 1000)))} events/s`,
);
if (mismatches.length === 0 && totals.size === expected.size) {
  console.log(
    `Check: KV totals match a direct computation over the input for all ${expected.size} SKUs`,
  );
} else {
  console.error(
    `Check FAILED: ${mismatches.length} SKU totals differ, ${totals.size} stored vs ` +
      `${expected.size} expected`,
  );
  Deno.exit(1);
}

function printSummary(s: RunSummary): void {
  console.log("\nStage         records in   records out   dead-lettered   restarts");
  for (const [name, c] of Object.entries(s.stages)) {
    console.log(
      `${name.padEnd(12)} ${fmt(c.in).padStart(11)} ${fmt(c.out).padStart(13)} ` +
        `${fmt(c.deadLettered).padStart(15)} ${String(c.restarts).padStart(10)}`,
    );
  }
}
