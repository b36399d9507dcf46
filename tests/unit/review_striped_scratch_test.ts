// Review of 6146a4f (striped reads cut another instance's chunks in one reused scratch buffer).
// A skipped chunk that needs more bytes while the carry still sits deep in the scratch (left there
// by an earlier, longer skipped read) must move the whole carry to the front before reading behind
// it. `buf.copyWithin` on the shortened view `scratch.subarray(0, held + want)` clamps the copy to
// that view, so the carry is only partly moved: the skipped chunk is cut on stale bytes, its lines
// are miscounted, and the instances of a striped read no longer agree on the cut.
import assert from "node:assert/strict";
import { collect, decodeLines, fileSource, pipeline, type StreamRecord } from "../../mod.ts";
import { FileCursor } from "../../connectors/file/_file_cursor.ts";

/** Short lines with a few long ones (longer than the 16 KiB a cursor reads at least). */
function text(): string {
  const lines: string[] = [];
  for (let i = 0; i < 400; i++) {
    const long = i % 37 === 5;
    lines.push(`${i}:` + (long ? "x".repeat(30_000 + 997 * (i % 7)) : "y".repeat((i * 13) % 70)));
  }
  return lines.join("\n") + "\n";
}

async function withFile(fn: (path: string, content: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "sluice-review-scratch-" });
  try {
    const content = text();
    await Deno.writeTextFile(`${dir}/in.txt`, content);
    await fn(`${dir}/in.txt`, content);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("FileCursor.next() cuts two consecutive skipped chunks after a long line where a plain read cuts them", () =>
  withFile(async (path, content) => {
    const whole = new TextEncoder().encode(content);
    const options = {
      gzip: false,
      lines: true,
      chunkBytes: 4096,
      maxLineBytes: 1 << 20,
      header: false,
    };
    const cut = async (skip?: (i: number) => boolean) => {
      const cursor = await FileCursor.open(path, options);
      const out: [number, number][] = [];
      try {
        for (let c = await cursor.next(true, skip); c; c = await cursor.next(true, skip)) {
          if (!c.skipped) {
            assert.deepEqual(c.bytes, whole.subarray(c.offset, c.offset + c.bytes.length));
          }
          out.push([c.offset, c.line]);
        }
      } finally {
        cursor.close();
      }
      return out;
    };
    const all = await cut();
    // Instance i of 3 skips two chunks in a row.
    for (let i = 0; i < 3; i++) {
      assert.deepEqual(await cut((index) => index % 3 !== i), all, `instance ${i} of 3`);
    }
  }));

Deno.test("fileSource() striped over 3 instances gives every line once, numbered, with lines longer than a read", () =>
  withFile(async (path, content) => {
    const expected = content.slice(0, -1).split("\n").map((t, i) => `${i + 1}:${t.length}`).sort();
    const out = collect<string>();
    try {
      await pipeline({ mode: "inline", signals: false })
        .from(fileSource({ path, format: "lines", chunkBytes: 4096 }), { parallelism: 3 })
        .via(decodeLines(), { parallelism: 3 })
        .to(out.sink)
        .run();
      const records = await out.records() as StreamRecord<string>[];
      const got = records.map((r) => `${r.headers?.line}:${r.value.length}`).sort();
      assert.deepEqual(got, expected);
    } finally {
      await out.clear();
    }
  }));
