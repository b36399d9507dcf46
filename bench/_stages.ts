// Stages used by bench/w2.ts: a keyed revenue sum, a totals sink, a null sink, a slow sink and a
// stateless processor that crashes its worker once per marker file (so a restarted instance does
// not fail again on the replayed record).
import { defineProcessor, defineSink } from "../actors/stage.ts";
import type { StreamRecord } from "../actors/record.ts";
import { z } from "../actors/_deps.ts";

/** What flows into the keyed sum: revenue of one purchase. */
export interface Revenue {
  sku: string;
  revenue: number;
}

/** One per-sku total, emitted by {@linkcode keyedRevenue} at the end of input. */
export interface SkuTotal {
  sku: string;
  revenue: number;
  purchases: number;
}

/**
 * Adds a revenue record to its key's `[revenue, purchases]` in `totals` (keyed state, or a `Map`
 * in the streams baseline: the same sum on both sides of the benchmark).
 */
export function addRevenue(
  totals: {
    get(key: string): [number, number] | undefined;
    set(key: string, value: [number, number]): unknown;
  },
  r: StreamRecord<Revenue>,
): void {
  const key = r.key ?? "";
  const t = totals.get(key);
  if (t) {
    t[0] += r.value.revenue;
    t[1]++;
  } else totals.set(key, [r.value.revenue, 1]);
}

/** Sums `value.revenue` per record key in keyed state; emits one total per key at flush. */
export const keyedRevenue = defineProcessor({
  name: "keyedRevenue",
  stateful: true,
  config: z.object({}).strict(),
  open(_config, ctx) {
    const totals = ctx.keyed<[number, number]>("revenue");
    return {
      process(r: StreamRecord<Revenue>) {
        addRevenue(totals, r);
      },
      flush() {
        for (const [sku, [revenue, purchases]] of totals.entries()) {
          ctx.emit({ key: sku, value: { sku, revenue, purchases }, ts: 0 });
        }
      },
    };
  },
});

/** Keeps the totals it receives and writes them, as JSON, to `path` at the end of input. */
export const totalsSink = defineSink({
  name: "totals",
  config: z.object({ path: z.string() }).strict(),
  open({ path }) {
    const totals: SkuTotal[] = [];
    return {
      write(records: StreamRecord<SkuTotal>[]) {
        for (const r of records) totals.push(r.value);
      },
      flush() {
        Deno.writeTextFileSync(path, JSON.stringify(totals));
      },
    };
  },
});

/** Drops everything (the restart run only needs the summary). */
export const nullSink = defineSink({
  name: "null",
  config: z.object({}).strict(),
  open: () => ({ write() {} }),
});

/** Sleeps `delayMs` per batch: the bottleneck of the memory run. */
export const slowSink = defineSink({
  name: "slow",
  config: z.object({ delayMs: z.number().min(0) }).strict(),
  open({ delayMs }) {
    return {
      write: () => new Promise<void>((resolve) => setTimeout(resolve, delayMs)),
    };
  },
});

/**
 * Crashes (throws from `beforeBatch`, so the instance fails and is restarted) when a batch holds
 * one of `ids`, once per id: the marker file `<dir>/<id>` records that it already failed.
 */
export const crashOnce = defineProcessor({
  name: "crashOnce",
  config: z.object({ ids: z.array(z.number()), dir: z.string() }).strict(),
  open({ ids, dir }) {
    const targets = new Set(ids);
    return {
      beforeBatch(records: StreamRecord<{ id: number }>[]) {
        for (const r of records) {
          if (!targets.has(r.value.id)) continue;
          try {
            Deno.writeTextFileSync(`${dir}/${r.value.id}`, "x", { createNew: true });
          } catch {
            continue; // failed here before: the replay goes through
          }
          throw new Error(`injected crash at record ${r.value.id}`);
        }
      },
      process: (r: StreamRecord<{ id: number }>) => r,
    };
  },
});

/**
 * Counts what `enrich` emitted — records, cache hits and misses (from the `cache` header), records
 * without their `product` — and writes the counts, as JSON, to `path` at the end of input.
 */
export const enrichCount = defineSink({
  name: "enrichCount",
  config: z.object({ path: z.string() }).strict(),
  open({ path }) {
    const counts = { records: 0, hits: 0, misses: 0, withoutProduct: 0 };
    return {
      write(records: StreamRecord<{ product?: unknown }>[]) {
        for (const r of records) {
          counts.records++;
          if (r.headers?.cache === "hit") counts.hits++;
          else if (r.headers?.cache === "miss") counts.misses++;
          if (r.value.product == null) counts.withoutProduct++;
        }
      },
      flush() {
        Deno.writeTextFileSync(path, JSON.stringify(counts));
      },
    };
  },
});
