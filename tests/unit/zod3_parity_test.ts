// What the config schemas accept and refuse stayed what it was with zod 4 (stop 18 moved them to
// zod 3): a differential check of the old and new schemas found these differences, mended here.
import assert from "node:assert/strict";
import { stageOptionsSchema } from "../../actors/_options.ts";
import { testPipeline } from "../../actors/testing.ts";
import { generatorSource } from "../../connectors/generator/mod.ts";
import { httpSinkStage } from "../../connectors/net/http_sink.ts";
import { decodeCsvStage } from "../../connectors/file/decode_csv.ts";
import { fileSinkStage } from "../../connectors/file/file_sink.ts";
import { transformStage } from "../../processors/transform.ts";
import { batchStage } from "../../processors/batch.ts";

const ok = (schema: { safeParse(v: unknown): { success: boolean } }, v: unknown) =>
  schema.safeParse(v).success;

Deno.test("integer options and configs refuse integers past 2^53, as zod 4's int() did", () => {
  assert.equal(ok(stageOptionsSchema, { parallelism: 2 ** 53 }), false);
  assert.equal(ok(stageOptionsSchema, { parallelism: 2 ** 53 - 1 }), true);
  assert.equal(ok(generatorSource.config, { count: 1e21, seed: 1 }), false);
  assert.equal(ok(generatorSource.config, { count: 10, seed: -(2 ** 60) }), false);
  assert.equal(ok(batchStage.config, { size: Number.MAX_VALUE }), false);
  assert.equal(ok(batchStage.config, { size: 10 }), true);
});

Deno.test("fromArray: an item without value is refused, and { watermark, ts } stays a watermark", async () => {
  const { output } = await testPipeline((flow) => flow, [
    { value: 1, ts: 1 },
    { watermark: 10, ts: 5 } as never,
    { value: 2, ts: 20 },
  ]);
  assert.deepEqual(output.map((r) => r.value), [1, 2]);
  await assert.rejects(() => testPipeline((flow) => flow, [{ ts: 5 } as never]), /items/);
  // A value that is there but undefined is a value.
  const kept = await testPipeline((flow) => flow, [{ value: undefined, ts: 3 }]);
  assert.equal(kept.output.length, 1);
});

Deno.test("httpSink url: http(s):// required, whitespace and line breaks dropped", () => {
  for (
    const url of ["http:example.com", "http:/h", "https:h", "http:\\h", "\u0000http://h", "ftp://h"]
  ) {
    assert.equal(ok(httpSinkStage.config, { url }), false, url);
  }
  const parsed = httpSinkStage.config.safeParse({ url: " https://exa\nmple.com/x\t " });
  assert.ok(parsed.success);
  assert.equal(parsed.data.url, "https://example.com/x");
});

Deno.test("JSON constants (transform set/defaults) refuse what is not plain JSON", () => {
  class P {
    x = 1;
  }
  for (const v of [new Uint8Array([7]), new P(), /x/, new Date(0), { [Symbol("s")]: 1 }]) {
    assert.equal(ok(transformStage.config, { set: { a: v } }), false, String(v));
  }
  const parsed = transformStage.config.safeParse({ set: { a: { b: [1, "x", null, true] } } });
  assert.ok(parsed.success);
  assert.deepEqual(parsed.data.set, { a: { b: [1, "x", null, true] } });
});

Deno.test("CSV delimiters count one character as one code point", () => {
  assert.equal(ok(decodeCsvStage.config, { delimiter: "😀" }), true);
  assert.equal(ok(decodeCsvStage.config, { delimiter: ";" }), true);
  assert.equal(ok(decodeCsvStage.config, { delimiter: "ab" }), false);
  assert.equal(ok(decodeCsvStage.config, { delimiter: "" }), false);
  assert.equal(
    ok(fileSinkStage.config, { path: "/tmp/x.csv", format: "csv", csv: { delimiter: "😀" } }),
    true,
  );
});
