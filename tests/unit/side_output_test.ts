import assert from "node:assert/strict";
import { testPipeline, window } from "../../mod.ts";

Deno.test("Side outputs reach their sink in workers mode (late records of a window)", async () => {
  for (let run = 0; run < 3; run++) {
    const input = [
      { key: "a", value: { n: 1 }, ts: 100 },
      { key: "a", value: { n: 2 }, ts: 1500 },
      { watermark: 2500 },
      { key: "a", value: { n: 5 }, ts: 200 }, // late: its window closed at 1000
      { key: "b", value: { n: 3 }, ts: 2600 },
    ];
    const { output, sides, deadLetters } = await testPipeline(
      (flow) =>
        flow.via(
          window({ type: "tumbling", sizeMs: 1000, aggregate: { n: { op: "sum", field: "n" } } }),
        ),
      input,
      { mode: run === 0 ? "inline" : "workers", sideOutputs: ["late"] },
    );
    assert.deepEqual(deadLetters, []);
    assert.deepEqual(sides.late?.map((r) => r.ts), [200]);
    assert.deepEqual(
      output.map((r) => [r.value.windowStart, r.key, r.value.n]),
      [[0, "a", 1], [1000, "a", 2], [2000, "b", 3]],
    );
  }
});
