// A chain of three stateless processors gives the same output and dead letters fused into one
// worker as with `fuse: false` (one worker each), at parallelism 1 and 2, inline and in workers.
import assert from "node:assert/strict";
import { filter, flatMap, map, type StageOptions, type StreamRecord } from "../../../mod.ts";
import { dead, modeTest, rec, run, sorted } from "./_modes.ts";

const input = Array.from({ length: 60 }, (_, i) => rec(i, 1000 + i, `k${i % 5}`));

// Computed here, independently of the stages: keep i % 3 != 0, fail 7, emit i*10 and i*10+1.
const expected: StreamRecord<number>[] = input
  .filter((r) => r.value % 3 !== 0 && r.value !== 7)
  .flatMap((r) => [{ ...r, value: r.value * 10 }, { ...r, value: r.value * 10 + 1 }]);
const kept = input.filter((r) => r.value % 3 !== 0).length;

function chain(options: StageOptions) {
  return (flow: Parameters<Parameters<typeof run>[1]>[0]) =>
    flow
      .via(filter((v: number) => v % 3 !== 0), options)
      .via(
        map((v: number) => {
          if (v === 7) throw new Error("Cannot map 7: it is unlucky");
          return v * 10;
        }),
        options,
      )
      .via(flatMap((v: number) => [v, v + 1]), options);
}

modeTest(
  "Three fused processors give the same output and dead letters as unfused ones",
  async (mode) => {
    for (const fuse of [true, false]) {
      const result = await run(mode, chain({ fuse }), input, { defaults: { batchSize: 8 } });
      assert.deepEqual(result.output, expected, `fuse: ${fuse}`);
      assert.deepEqual(dead(result), [{
        stage: "map",
        message: "Cannot map 7: it is unlucky",
        attempts: 3,
        record: rec(7, 1007, "k2"),
      }]);
      const s = result.summary.stages;
      assert.deepEqual(
        [s.filter?.in, s.filter?.out, s.map?.in, s.map?.out, s.flatMap?.in, s.flatMap?.out],
        [60, kept, kept, kept - 1, kept - 1, expected.length],
      );
    }
  },
);

modeTest("Three processors at parallelism 2, fused or not, give the same records", async (mode) => {
  for (const fuse of [true, false]) {
    const result = await run(mode, chain({ fuse, parallelism: 2 }), input, {
      defaults: { batchSize: 4 },
    });
    // Round-robin edges may interleave instances: compare as sets.
    assert.deepEqual(sorted(result.output), sorted(expected), `fuse: ${fuse}`);
    assert.deepEqual(dead(result).map((d) => [d.stage, d.record]), [["map", rec(7, 1007, "k2")]]);
  }
  const empty = await run(mode, chain({ fuse: false, parallelism: 2 }), []);
  assert.deepEqual([empty.output, empty.deadLetters], [[], []]);
});
