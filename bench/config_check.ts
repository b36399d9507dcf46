// Microbenchmark of the check that a stage's config can be sent to its worker (`unsendable`,
// actors/_clone.ts) against zod's validation of the same config (`parseConfig`), which every
// config already gets: in the same run, on the same configs, median of the runs. Three configs of
// a 200 000-record `fromArray`: plain values, values holding a `Date`, values holding bytes.
//
//   deno run -A bench/config_check.ts [--count 200000] [--repeat 5]
//
// Prints ms for each side and the ratio check / zod; exits with status 1 if the check finds one of
// these (sendable) configs unsendable. Goal: the check costs at most a few times zod's validation
// (before a review in stop 13 it took 5–10× for Dates and bytes: a structured clone per object).
import { parseConfig } from "../actors/_config.ts";
import { unsendable } from "../actors/_clone.ts";
import { arraySource } from "../actors/testing.ts";
import { intFlag, median } from "./_common.ts";

const count = intFlag("count", 200_000);
const repeat = intFlag("repeat", 5);

const shapes: [string, (i: number) => unknown][] = [
  ["plain values", (i) => ({ id: i, name: `n${i % 100}`, tags: ["a", "b"] })],
  ["values with a Date", (i) => ({ id: i, x: new Date(i) })],
  ["values with bytes", (i) => ({ id: i, x: new Uint8Array([i % 256, 1, 2, 3]) })],
];

function ms(fn: () => unknown): number {
  const started = performance.now();
  fn();
  return performance.now() - started;
}

console.log(`config check of a ${count}-record fromArray, median of ${repeat} runs`);
console.log("| items | zod ms | check ms | check / zod |");
console.log("| --- | ---: | ---: | ---: |");
let failed = false;
for (const [name, value] of shapes) {
  const items = Array.from({ length: count }, (_, i) => ({ value: value(i), ts: i }));
  // Warm both up on a small config first.
  parseConfig(arraySource, "array", { items: items.slice(0, 1000) });
  unsendable({ items: items.slice(0, 1000) });
  const zod: number[] = [];
  const check: number[] = [];
  for (let r = 0; r < repeat; r++) {
    zod.push(ms(() => parseConfig(arraySource, "array", { items })));
    let found: unknown;
    check.push(ms(() => found = unsendable({ items })));
    if (found !== undefined) {
      console.error(
        `${name}: the check calls a sendable config unsendable: ${JSON.stringify(found)}`,
      );
      failed = true;
    }
  }
  const z = median(zod), c = median(check);
  console.log(`| ${name} | ${z.toFixed(0)} | ${c.toFixed(0)} | ${(c / z).toFixed(2)}× |`);
}
if (failed) Deno.exit(1);
