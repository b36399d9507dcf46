// Review of 1e76974 (csv-parse, csv-stringify and node:zlib load on first use): the gzip read, the
// CSV decode and the CSV write still work in least-permission workers, where each loads lazily.
import assert from "node:assert/strict";
import { gzipSync } from "node:zlib";
import { collect, decodeCsv, decodeLines, fileSink, fileSource, pipeline } from "../../mod.ts";

Deno.test("fileSource() gunzips a .gz file in a worker (node:zlib loaded on first use), striped too", async () => {
  const dir = await Deno.makeTempDir({ prefix: "sluice-review-lazy-" });
  try {
    const lines = Array.from({ length: 3000 }, (_, i) => `line ${i} ${"z".repeat(i % 50)}`);
    await Deno.writeFile(`${dir}/in.txt.gz`, gzipSync(new TextEncoder().encode(lines.join("\n"))));
    for (const parallelism of [1, 3]) {
      const out = collect<string>();
      try {
        await pipeline({ mode: "workers", signals: false })
          .from(fileSource({ path: `${dir}/in.txt.gz`, format: "lines", chunkBytes: 512 }), {
            parallelism,
          })
          .via(decodeLines(), { parallelism })
          .to(out.sink)
          .run();
        const got = (await out.records()).map((r) => `${r.headers?.line}:${r.value}`).sort();
        assert.deepEqual(
          got,
          lines.map((l, i) => `${i + 1}:${l}`).sort(),
          `parallelism ${parallelism}`,
        );
      } finally {
        await out.clear();
      }
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test('decodeCsv() and fileSink({ format: "csv", gzip: true }) load csv-parse and csv-stringify in workers', async () => {
  const dir = await Deno.makeTempDir({ prefix: "sluice-review-lazy-" });
  try {
    const rows = Array.from({ length: 500 }, (_, i) => `${i},"name, ${i}",${i % 2 === 0}`);
    await Deno.writeTextFile(`${dir}/in.csv`, "id,name,even\n" + rows.join("\n") + "\n");
    await pipeline({ mode: "workers", signals: false })
      .from(fileSource({ path: `${dir}/in.csv`, format: "csv", chunkBytes: 1000 }))
      .via(decodeCsv({ cast: true }))
      .to(
        fileSink({
          path: `${dir}/out/rows.csv.gz`,
          format: "csv",
          gzip: true,
          csv: { columns: ["id", "name", "even"] },
        }),
      )
      .run();
    const back = collect<Record<string, unknown>>();
    try {
      await pipeline({ mode: "workers", signals: false })
        .from(fileSource({ path: `${dir}/out/rows.csv.gz`, format: "csv" }))
        .via(decodeCsv({ cast: true }))
        .to(back.sink)
        .run();
      const values = await back.values();
      assert.equal(values.length, 500);
      assert.deepEqual(values.map((v) => v.name).sort(), rows.map((_, i) => `name, ${i}`).sort());
    } finally {
      await back.clear();
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
