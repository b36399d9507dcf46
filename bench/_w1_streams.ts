// The Node-streams baseline of benchmark W1: the job of examples/revenue_by_sku.ts written the way
// a Node developer would, on one thread: createReadStream → line-splitting Transform → JSON.parse →
// keep purchases → revenue = price × qty → sum per (1-second window, SKU) in a Map → write NDJSON.
// Records travel one per chunk in objectMode, as in any Node object pipeline.
import { createReadStream, createWriteStream } from "node:fs";
import { Transform, type TransformCallback, Writable } from "node:stream";
import { pipeline } from "node:stream/promises";

/** What the baseline did. */
export interface StreamsReport {
  /** Input lines read (parsed or malformed). */
  recordsIn: number;
  /** Lines that were not JSON, or had no numeric `ts`. */
  malformed: number;
  /** Output lines: one per (window, SKU). */
  windowsOut: number;
}

interface Event {
  sku: string;
  type: string;
  price: number;
  qty: number;
  ts: number;
}

/** Splits bytes into lines (without `\n` or `\r`), one line per output chunk. */
function splitLines(): Transform {
  const decoder = new TextDecoder();
  let carry = "";
  return new Transform({
    readableObjectMode: true,
    transform(chunk: Uint8Array, _enc: BufferEncoding, done: TransformCallback) {
      const parts = (carry + decoder.decode(chunk, { stream: true })).split("\n");
      carry = parts.pop() ?? "";
      for (const line of parts) this.push(line.endsWith("\r") ? line.slice(0, -1) : line);
      done();
    },
    flush(done: TransformCallback) {
      const rest = carry + decoder.decode();
      if (rest !== "") this.push(rest);
      done();
    },
  });
}

/** An objectMode Transform from a function: `undefined` drops the chunk. */
function step<I, O>(fn: (value: I) => O | undefined): Transform {
  return new Transform({
    objectMode: true,
    transform(value: I, _enc: BufferEncoding, done: TransformCallback) {
      const out = fn(value);
      done(null, out);
    },
  });
}

/**
 * Runs the baseline over `input`, writing `{"windowStart","sku","revenue"}` lines to `output`
 * (replaced), in (windowStart, sku) order.
 */
export async function streamsRevenue(input: string, output: string): Promise<StreamsReport> {
  const report: StreamsReport = { recordsIn: 0, malformed: 0, windowsOut: 0 };
  const sums = new Map<string, { windowStart: number; sku: string; revenue: number }>();
  await pipeline(
    createReadStream(input, { highWaterMark: 65_536 }),
    splitLines(),
    step((line: string): Event | undefined => {
      if (line.trim() === "") return undefined;
      report.recordsIn++;
      try {
        const e = JSON.parse(line) as Event;
        if (typeof e?.ts === "number" && Number.isFinite(e.ts)) return e;
      } catch { /* counted below */ }
      report.malformed++;
      return undefined;
    }),
    step((e: Event) => (e.type === "purchase" ? e : undefined)),
    step((e: Event) => ({ sku: e.sku, revenue: e.price * e.qty, ts: e.ts })),
    new Writable({
      objectMode: true,
      write(r: { sku: string; revenue: number; ts: number }, _enc, done) {
        const windowStart = r.ts - (((r.ts % 1000) + 1000) % 1000);
        const key = `${windowStart}|${r.sku}`;
        const sum = sums.get(key);
        if (sum) sum.revenue += r.revenue;
        else sums.set(key, { windowStart, sku: r.sku, revenue: r.revenue });
        done();
      },
    }),
  );
  const rows = [...sums.values()].sort((a, b) =>
    a.windowStart - b.windowStart || (a.sku < b.sku ? -1 : a.sku > b.sku ? 1 : 0)
  );
  const out = createWriteStream(output);
  await pipeline(
    (function* () {
      for (const row of rows) yield JSON.stringify(row) + "\n";
    })(),
    out,
  );
  report.windowsOut = rows.length;
  return report;
}
