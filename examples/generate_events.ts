/**
 * A deterministic generator of e-commerce events as NDJSON, for the demo and benchmarks.
 *
 * Each line is `{"id","userId","sku","type","price","qty","ts"}`; the same `count` and `seed` give
 * the same bytes. Event time advances ~5 ms per event with up to 250 ms of jitter (so events are
 * slightly out of order), SKU popularity is skewed, and about one line in 10 000 is truncated
 * JSON, to exercise dead-lettering.
 *
 * ```sh
 * deno run -A examples/generate_events.ts --count 200000 --seed 42 --output .sluice/demo/events.ndjson
 * ```
 *
 * @module
 */
import { parseArgs } from "node:util";

/** One generated event. */
export interface ShopEvent {
  id: string;
  userId: string;
  sku: string;
  type: "view" | "add_to_cart" | "purchase" | "refund";
  price: number;
  qty: number;
  ts: number;
}

/** Options of {@linkcode generateEvents}. */
export interface GenerateOptions {
  /** Number of lines. Default 200 000. */
  count?: number;
  /** PRNG seed. Default 42. */
  seed?: number;
  /** Event time of the first event, ms. Default 2024-01-01T00:00:00Z. */
  startTs?: number;
  /** Number of SKUs. Default 200. */
  skus?: number;
  /** One line in this many is malformed (0: none). Default 10 000. */
  malformedEvery?: number;
}

/** What {@linkcode writeEvents} wrote. */
export interface GenerateStats {
  lines: number;
  malformed: number;
  purchases: number;
  bytes: number;
}

/** mulberry32: a small, fast, deterministic PRNG returning floats in [0, 1). */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * Yields NDJSON lines (without newline) and whether each is well-formed.
 *
 * @param options Count, seed, start time, SKUs, malformed rate.
 */
export function* generateEvents(
  options: GenerateOptions = {},
): Generator<{ line: string; event?: ShopEvent }> {
  const {
    count = 200_000,
    seed = 42,
    startTs = Date.UTC(2024, 0, 1),
    skus = 200,
    malformedEvery = 10_000,
  } = options;
  const rand = prng(seed);
  const prices = Array.from({ length: skus }, () => Math.round((1 + rand() * 199) * 100) / 100);
  for (let i = 0; i < count; i++) {
    const r = rand();
    const type = r < 0.6 ? "view" : r < 0.85 ? "add_to_cart" : r < 0.97 ? "purchase" : "refund";
    const s = Math.floor(skus * rand() ** 2); // skewed: low indices are popular
    const event: ShopEvent = {
      id: `e${String(i).padStart(8, "0")}`,
      userId: `u${Math.floor(rand() * 5000)}`,
      sku: `SKU-${String(s).padStart(4, "0")}`,
      type,
      price: prices[s]!,
      qty: type === "purchase" || type === "add_to_cart" ? 1 + Math.floor(rand() * 4) : 1,
      ts: startTs + i * 5 + Math.floor(rand() * 250),
    };
    const line = JSON.stringify(event);
    if (malformedEvery > 0 && i % malformedEvery === malformedEvery - 1) {
      yield { line: line.slice(0, Math.floor(line.length / 2)) };
    } else yield { line, event };
  }
}

/**
 * Writes generated events to an NDJSON file (creating its directory).
 *
 * @param path Output file.
 * @param options See {@linkcode GenerateOptions}.
 * @returns Line, malformed and purchase counts, and bytes written.
 */
export async function writeEvents(
  path: string,
  options: GenerateOptions = {},
): Promise<GenerateStats> {
  const dir = path.replace(/[/\\][^/\\]*$/, "");
  if (dir && dir !== path) await Deno.mkdir(dir, { recursive: true });
  const file = await Deno.open(path, { write: true, create: true, truncate: true });
  const encoder = new TextEncoder();
  const stats: GenerateStats = { lines: 0, malformed: 0, purchases: 0, bytes: 0 };
  let chunk: string[] = [];
  const flush = async () => {
    const bytes = encoder.encode(chunk.join(""));
    for (let at = 0; at < bytes.length;) at += await file.write(bytes.subarray(at));
    stats.bytes += bytes.length;
    chunk = [];
  };
  try {
    for (const { line, event } of generateEvents(options)) {
      chunk.push(line, "\n");
      stats.lines++;
      if (!event) stats.malformed++;
      else if (event.type === "purchase") stats.purchases++;
      if (chunk.length >= 8192) await flush();
    }
    await flush();
  } finally {
    file.close();
  }
  return stats;
}

if (import.meta.main) {
  const { values } = parseArgs({
    args: Deno.args,
    options: {
      count: { type: "string", default: "200000" },
      seed: { type: "string", default: "42" },
      output: { type: "string", default: ".sluice/demo/events.ndjson" },
    },
  });
  const count = Number(values.count);
  const seed = Number(values.seed);
  if (!Number.isInteger(count) || count < 0 || !Number.isInteger(seed)) {
    console.error("Cannot generate: --count and --seed must be integers");
    Deno.exit(2);
  }
  const stats = await writeEvents(values.output, { count, seed });
  console.log(
    `wrote ${stats.lines} lines (${stats.purchases} purchases, ${stats.malformed} malformed, ` +
      `${(stats.bytes / 1e6).toFixed(1)} MB) to ${values.output}`,
  );
}
