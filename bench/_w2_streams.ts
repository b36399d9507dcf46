// The Node-streams baseline of benchmark W2: the generator's own code pulled 512 events at a time,
// one record per chunk in objectMode → keep purchases → revenue = price × qty → sums per sku in a
// Map. `bench/w2.ts` runs it in its own thread (warm after the first runs), and, for a start as
// cold as a Sluice worker's, in a fresh worker (`_w2_streams_worker.ts`).
import { Readable, Transform, Writable } from "node:stream";
import { pipeline as streamPipeline } from "node:stream/promises";
import type { StreamRecord } from "../actors/mod.ts";
import { standaloneContext } from "../actors/_standalone_context.ts";
import {
  type EcommerceEvent,
  type GeneratorOptions,
  generatorSource,
} from "../connectors/generator/mod.ts";
import { addRevenue, type Revenue, type SkuTotal } from "./_stages.ts";

/** What a run took and the per-sku totals it made, in a canonical form to compare. */
export interface Result {
  seconds: number;
  totals: string;
}

function openGenerator(config: GeneratorOptions) {
  const abort = new AbortController();
  const ctx = standaloneContext<EcommerceEvent>("generator", abort.signal);
  const parsed = generatorSource.config.safeParse(config);
  if (!parsed.success) throw new TypeError("Cannot open generator: bad config");
  return { source: generatorSource.open(parsed.data, ctx), ctx, signal: abort.signal };
}

/** Runs the baseline over the generator's events for `gen`. */
export async function streams(gen: GeneratorOptions): Promise<Result> {
  const started = performance.now();
  const { source: opening, ctx, signal } = openGenerator(gen);
  const source = await opening;
  const readable = new Readable({
    objectMode: true,
    read() {
      Promise.resolve(source.pull({ max: 512, signal }, ctx)).then((batch) => {
        if (batch === null) this.push(null);
        else for (const r of batch.records) this.push(r);
      }, (e) => this.destroy(e));
    },
  });
  const keep = new Transform({
    objectMode: true,
    transform(r: StreamRecord<EcommerceEvent>, _enc, cb) {
      if (r.value.type === "purchase") cb(null, r);
      else cb();
    },
  });
  const revenue = new Transform({
    objectMode: true,
    transform(r: StreamRecord<EcommerceEvent>, _enc, cb) {
      cb(null, { ...r, value: { sku: r.value.sku, revenue: r.value.price * r.value.qty } });
    },
  });
  const totals = new Map<string, [number, number]>();
  const sum = new Writable({
    objectMode: true,
    write(r: StreamRecord<Revenue>, _enc, cb) {
      addRevenue(totals, r);
      cb();
    },
  });
  await streamPipeline(readable, keep, revenue, sum);
  const seconds = (performance.now() - started) / 1000;
  const list: SkuTotal[] = [...totals].map(([sku, [revenue, purchases]]) => ({
    sku,
    revenue,
    purchases,
  }));
  return { seconds, totals: canonical(list) };
}

/** Per-sku totals as a string, sorted by sku: equal strings, equal results. */
export function canonical(list: SkuTotal[]): string {
  return JSON.stringify([...list].sort((a, b) => a.sku < b.sku ? -1 : a.sku > b.sku ? 1 : 0));
}
