/**
 * Revenue per SKU per second, from an NDJSON file of e-commerce events (workload W1).
 *
 * Pipeline: file chunks → decode NDJSON (parallelism N) → keep purchases → revenue = price × qty →
 * key by SKU → 1-second event-time tumbling window summing revenue (parallelism N) → output shape
 * → NDJSON file, one line `{"windowStart","sku","revenue"}` per (window, SKU). Malformed lines go
 * to the dead-letter file. The output and dead-letter files are replaced on each run.
 *
 * ```sh
 * deno run -A examples/generate_events.ts --count 200000 --seed 42 --output events.ndjson
 * deno run -A examples/revenue_by_sku.ts --input events.ndjson --output out.ndjson \
 *   [--parallelism 2] [--mode workers|inline] [--dead-letters dead.ndjson] [--out-of-order-ms 1000]
 * ```
 *
 * **Event time.** `fileSource` reads raw chunks, which carry no event time. The decoders give each
 * record its `ts` from the data (`tsField`) and, with the `watermarks` stage option, generate the
 * watermarks too (highest ts decoded − `--out-of-order-ms`); a window's watermark is the minimum
 * over the decoders, so windows fire while the file is read. A record later than that bound goes
 * to the dead letters as late.
 *
 * @module
 */
import { parseArgs } from "node:util";
import {
  type DeadLetter,
  decodeNdjson,
  fileSink,
  fileSource,
  filter,
  map,
  ndjsonDeadLetters,
  pipeline,
  type RunSummary,
  window,
} from "../mod.ts";

/** One input event (extra fields are ignored). */
export interface ShopEvent {
  id: string;
  userId: string;
  sku: string;
  type: string;
  price: number;
  qty: number;
  ts: number;
}

/** One output line: the revenue of one SKU in one 1-second window. */
export interface SkuRevenue {
  windowStart: number;
  sku: string;
  revenue: number;
}

/** Options of {@linkcode revenueBySku}. */
export interface RevenueOptions {
  /** NDJSON input file. */
  input: string;
  /** NDJSON output file (replaced). */
  output: string;
  /** Dead-letter file (replaced). Default `.sluice/dead-letters/revenue_by_sku.ndjson`. */
  deadLetters?: string;
  /** Instances reading and decoding the file (each takes every N-th chunk). Default 2. */
  parallelism?: number;
  /** Instances of the window stage. Default 1: fused with the output, no hop after it. */
  windowParallelism?: number;
  /** `"workers"` (default) or `"inline"`. */
  mode?: "workers" | "inline";
  /** How late an event may be relative to the latest chunk start, ms. Default 1000. */
  outOfOrdernessMs?: number;
  /** Target size of the file chunks handed to the decoders, bytes. Default 262 144. */
  chunkBytes?: number;
}

/** What {@linkcode revenueBySku} did. */
export interface RevenueReport {
  /** Input lines read (decoded or dead-lettered). */
  recordsIn: number;
  /** Purchases that reached the window stage. */
  purchases: number;
  /** Output lines written: one per (window, SKU). */
  windowsOut: number;
  /** Dead letters (malformed or late lines). */
  deadLetters: number;
  /** Wall time of `run()`, ms. */
  elapsedMs: number;
  /** The runtime's summary. */
  summary: RunSummary;
}

/**
 * Runs the W1 pipeline over `input` and writes one line per (window, SKU) to `output`.
 *
 * @param options Input, output, dead letters, parallelism, mode, out-of-orderness.
 * @returns Counts, elapsed time and the run summary.
 */
export async function revenueBySku(options: RevenueOptions): Promise<RevenueReport> {
  const { input, output, parallelism = 2, mode = "workers", outOfOrdernessMs = 1000 } = options;
  const windowParallelism = options.windowParallelism ?? 1;
  const deadPath = options.deadLetters ?? ".sluice/dead-letters/revenue_by_sku.ndjson";
  for (const path of [output, deadPath]) await Deno.remove(path).catch(() => {});
  const deadFile = ndjsonDeadLetters(deadPath);
  let deadLetters = 0;
  const p = pipeline({
    name: "revenue_by_sku",
    mode,
    signals: false,
    deadLetter: {
      write(entries: DeadLetter[]) {
        deadLetters += entries.length;
        return deadFile.write(entries);
      },
      close: () => deadFile.close?.(),
    },
  });
  const chunkBytes = options.chunkBytes ?? 262_144;
  const chunks = fileSource({ path: input, format: "ndjson", chunkBytes });
  const n = { parallelism };
  // Source and decoders at the same parallelism fuse: each worker reads its stripe of the file
  // and parses it; only purchases cross to the windows.
  p.from(chunks, { name: "chunks", ...n })
    // Nothing here reads the per-line provenance headers (dead letters keep them regardless).
    .via(decodeNdjson<ShopEvent>({ tsField: "ts", lineHeaders: false }), {
      name: "decode",
      watermarks: { outOfOrdernessMs },
      ...n,
    })
    .via(filter((e: ShopEvent) => e.type === "purchase"), { name: "purchases", ...n })
    .via(map((e: ShopEvent) => ({ sku: e.sku, revenue: e.price * e.qty })), {
      name: "revenue",
      ...n,
    })
    .keyBy((v) => v.sku, { name: "bySku", ...n })
    .via(
      window({
        type: "tumbling",
        sizeMs: 1000,
        aggregate: { revenue: { op: "sum", field: "revenue" } },
      }),
      // The stripes are read by independent workers: the one ahead in event time waits for the
      // other (bounded open windows, small checkpoints) instead of racing to the end of the file.
      { name: "window1s", parallelism: windowParallelism, align: { maxDriftMs: 5000 } },
    )
    .via(
      map((w: { windowStart: number; key?: string; revenue: number }): SkuRevenue => ({
        windowStart: w.windowStart,
        sku: w.key ?? "",
        revenue: w.revenue,
      })),
      { name: "shape" }, // parallelism 1: fused into the sink's worker (and the window's at 1)
    )
    .to(fileSink({ path: output, format: "ndjson" }), { name: "out" });
  const started = performance.now();
  const summary = await p.run();
  const elapsedMs = performance.now() - started;
  const decode = summary.stages.decode;
  return {
    recordsIn: (decode?.out ?? 0) + (decode?.deadLettered ?? 0),
    purchases: summary.stages.window1s?.in ?? 0,
    windowsOut: summary.stages.out?.in ?? 0,
    deadLetters,
    elapsedMs,
    summary,
  };
}

if (import.meta.main) {
  const usage = "usage: deno run -A examples/revenue_by_sku.ts --input <events.ndjson> " +
    "--output <out.ndjson> [--parallelism N] [--window-parallelism N] [--mode workers|inline] " +
    "[--dead-letters <path>] " +
    "[--out-of-order-ms MS]";
  const { values: args } = parseArgs({
    args: Deno.args,
    options: {
      input: { type: "string" },
      output: { type: "string" },
      parallelism: { type: "string", default: "2" },
      "window-parallelism": { type: "string", default: "1" },
      mode: { type: "string", default: "workers" },
      "dead-letters": { type: "string" },
      "out-of-order-ms": { type: "string", default: "1000" },
      help: { type: "boolean", short: "h" },
    },
  });
  const parallelism = Number(args.parallelism);
  const windowParallelism = Number(args["window-parallelism"]);
  const outOfOrdernessMs = Number(args["out-of-order-ms"]);
  const mode = args.mode;
  if (args.help) {
    console.log(usage);
    Deno.exit(0);
  }
  if (!args.input || !args.output) {
    console.error(`Cannot run: --input and --output are required\n${usage}`);
    Deno.exit(2);
  }
  if (!Number.isInteger(parallelism) || parallelism < 1) {
    console.error(`Cannot run: --parallelism is ${args.parallelism}, not a positive integer`);
    Deno.exit(2);
  }
  if (!Number.isInteger(windowParallelism) || windowParallelism < 1) {
    console.error(
      `Cannot run: --window-parallelism is ${args["window-parallelism"]}, not a positive integer`,
    );
    Deno.exit(2);
  }
  if (!(outOfOrdernessMs >= 0)) {
    console.error(`Cannot run: --out-of-order-ms is ${args["out-of-order-ms"]}, not a number ≥ 0`);
    Deno.exit(2);
  }
  if (mode !== "workers" && mode !== "inline") {
    console.error(`Cannot run: --mode is "${mode}", not "workers" or "inline"`);
    Deno.exit(2);
  }
  const r = await revenueBySku({
    input: args.input,
    output: args.output,
    deadLetters: args["dead-letters"],
    parallelism,
    windowParallelism,
    mode,
    outOfOrdernessMs,
  });
  const rate = Math.round(r.recordsIn / (r.elapsedMs / 1000));
  console.log(
    `revenue_by_sku: ${r.recordsIn} records in, ${r.purchases} purchases, ` +
      `${r.windowsOut} windows out, ${r.deadLetters} dead letters, ` +
      `${
        (r.elapsedMs / 1000).toFixed(2)
      } s, ${rate} records/s (${mode}, parallelism ${parallelism})`,
  );
}
