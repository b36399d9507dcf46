// Sluice's stages use zod 3; a user's stage module or record schema may use zod 4. Both must work
// in both hosting modes: config validated (defaults applied) before anything starts and in the
// worker, a bad config named by its zod 4 path and message, records validated by a zod 4 schema.
import assert from "node:assert/strict";
import { ConfigError, stage, testPipeline } from "../../mod.ts";
import { validate } from "../../processors/validate.ts";

const fixture = new URL("./fixtures/zod4_stages.ts", import.meta.url);
const input = [1, 2, 3].map((v) => ({ value: v, ts: v }));

for (const mode of ["inline", "workers"] as const) {
  Deno.test(`a stage with a zod 4 config schema runs with its defaults applied (${mode})`, async () => {
    const { output } = await testPipeline(
      (flow) => flow.via(stage<number, number>(fixture, { factor: 10 }, { export: "scale" })),
      input,
      { mode },
    );
    assert.deepEqual(output.map((r) => r.value), [10, 20, 30]);
  });

  Deno.test(`a bad config for a zod 4 schema fails with its path and zod 4's message (${mode})`, async () => {
    await assert.rejects(
      () =>
        testPipeline(
          (flow) => flow.via(stage<number, number>(fixture, { factor: "2" }, { export: "scale" })),
          input,
          { mode },
        ),
      (e: unknown) => {
        assert.ok(e instanceof ConfigError, String(e));
        assert.equal(
          e.message,
          'Cannot configure stage "scale": config.factor: Invalid input: expected number, received string',
        );
        return true;
      },
    );
  });

  Deno.test(`validate() dead-letters a record a zod 4 schema rejects, with its message (${mode})`, async () => {
    const orders = [{ id: "a", total: 5 }, { id: "", total: -1 }].map((v, i) => ({
      value: v,
      ts: i,
    }));
    const { output, deadLetters } = await testPipeline(
      (flow) => flow.via(validate(fixture, "Order")),
      orders,
      { mode },
    );
    assert.deepEqual(output.map((r) => r.value), [{ id: "a", total: 5 }]);
    assert.equal(deadLetters.length, 1);
    assert.equal(
      deadLetters[0]!.error.message,
      "Cannot validate record: value.id: Too small: expected string to have >=1 characters; " +
        "value.total: Too small: expected number to be >=0",
    );
  });
}
