// Microbenchmark of how a batch crosses a channel (actors/_wire.ts): packed, structured-cloned and
// unpacked, against structured clone alone (what postMessage did before), in the same run, on the
// same batches of 512 records. Four shapes: the generator's events, W2's revenue records, W1-like
// NDJSON lines with headers, and records of mixed shapes (which go unpacked: the cost of trying).
//
//   deno run -A bench/wire.ts [--count 300000] [--repeat 5]
//
// Prints µs per record for each side (medians) and the ratio; exits with status 1 if a packed batch
// does not come out equal to its structured clone.
import { isDeepStrictEqual } from "node:util";
import type { StreamRecord } from "../actors/record.ts";
import { Packer, unpack } from "../actors/_wire.ts";
import { generatedEvents, intFlag, median } from "./_common.ts";

const count = intFlag("count", 300_000);
const repeat = intFlag("repeat", 5);
const BATCH = 512;

function batches<T>(records: T[]): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < records.length; i += BATCH) out.push(records.slice(i, i + BATCH));
  return out;
}

const events = await generatedEvents({ count, seed: 2024, skus: 100 });
const shapes: [string, StreamRecord<unknown>[][]][] = [
  ["generator events", batches(events)],
  [
    "revenue records",
    batches(
      events.filter((r) => r.value.type === "purchase").map((r) => ({
        ...r,
        value: { sku: r.value.sku, revenue: r.value.price * r.value.qty },
      })),
    ),
  ],
  [
    "NDJSON lines + headers",
    batches(events.map((r, i) => ({
      value: JSON.stringify(r.value),
      ts: r.ts,
      headers: { file: "events.ndjson", line: String(i + 1) },
    }))),
  ],
  [
    "mixed shapes (unpacked)",
    batches(events.map((r, i) => i % 2 === 0 ? r : { key: r.key, value: r.value.id, ts: r.ts })),
  ],
];

function clone(set: StreamRecord<unknown>[][]): number {
  const started = performance.now();
  for (const b of set) structuredClone(b);
  return performance.now() - started;
}

function packed(set: StreamRecord<unknown>[][]): number {
  const packer = new Packer();
  const started = performance.now();
  for (const b of set) unpack(structuredClone(packer.pack(b)));
  return performance.now() - started;
}

console.log(
  `Channel batches of ${BATCH}: structured clone vs packed (pack + clone + unpack); ` +
    `median of ${repeat}, µs per record; Deno ${Deno.version.deno}`,
);
console.log("");
console.log("| records                  | records | structured clone | packed | ratio |");
console.log("| ------------------------ | ------: | ---------------: | -----: | ----: |");
let failed = false;
for (const [name, set] of shapes) {
  const packer = new Packer();
  for (const b of set.slice(0, 20)) {
    if (!isDeepStrictEqual(unpack(structuredClone(packer.pack(b))), structuredClone(b))) {
      console.error(`FAIL: a packed batch of ${name} differs from its structured clone`);
      failed = true;
      break;
    }
  }
  const n = set.reduce((k, b) => k + b.length, 0);
  const a: number[] = [], p: number[] = [];
  for (let r = 0; r < repeat; r++) {
    a.push(clone(set));
    p.push(packed(set));
  }
  const perA = median(a) * 1000 / n, perP = median(p) * 1000 / n;
  console.log(
    `| ${name.padEnd(24)} | ${String(n).padStart(7)} | ${perA.toFixed(3).padStart(16)} | ${
      perP.toFixed(3).padStart(6)
    } | ${(perA / perP).toFixed(2).padStart(4)}× |`,
  );
}
if (failed) Deno.exit(1);
