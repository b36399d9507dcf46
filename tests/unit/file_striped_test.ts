// A single file read by fileSource() with parallelism N is striped: every instance reads the whole
// file and hands out every N-th chunk, with a decoder of the same parallelism fused behind it.
// Expectations come from reading the file here, or from a parallelism-1 run of the same cut.
import assert from "node:assert/strict";
import {
  collect,
  type DeadLetter,
  decodeCsv,
  decodeLines,
  decodeNdjson,
  type FileChunk,
  fileSource,
  type FileSourceOptions,
  type Flow,
  memoryDeadLetters,
  partitionOf,
  pipeline,
  type PipelineCounters,
  type StageRef,
  type StreamRecord,
} from "../../mod.ts";

const MODES = ["inline", "workers"] as const;
type Mode = (typeof MODES)[number];

interface Read<T> {
  records: StreamRecord<T>[];
  dead: DeadLetter[];
  counters: PipelineCounters;
  /** Names of the workers started (`group#instance`), in workers mode. */
  workers: string[];
}

/**
 * Runs fileSource → decoder (both at `parallelism`, unless `fuse` is false) → collect, or
 * fileSource → collect when there is no decoder, noting every worker the runtime starts.
 */
async function read<T>(
  mode: Mode,
  source: FileSourceOptions,
  decoder: StageRef<FileChunk, T> | undefined,
  parallelism: number,
  fuse = true,
): Promise<Read<T>> {
  const dead = memoryDeadLetters();
  const out = collect<T>();
  const workers: string[] = [];
  const Base = globalThis.Worker;
  globalThis.Worker = class extends Base {
    constructor(url: string | URL, options?: WorkerOptions) {
      super(url, options);
      workers.push(options?.name ?? "");
    }
  };
  try {
    const p = pipeline({ mode, signals: false, deadLetter: dead });
    const flow = p.from(fileSource(source), { parallelism });
    if (decoder) flow.via(decoder, { parallelism, fuse }).to(out.sink);
    else (flow as unknown as Flow<T>).to(out.sink);
    await p.run();
    const records = await out.records() as StreamRecord<T>[];
    return { records, dead: dead.entries, counters: p.counters(), workers: workers.sort() };
  } finally {
    globalThis.Worker = Base;
    await out.clear();
  }
}

/** Per-instance counter `field` of `stage`. */
function perInstance(counters: PipelineCounters, stage: string, field: "in" | "out"): number[] {
  return (counters[stage]?.instances ?? []).map((c) => c[field]);
}

/** Lines of varied length: multi-byte characters, empty lines, some longer than a chunk. */
function sampleLines(count: number): string[] {
  const pieces = ["a", "é", "€", "😀", "word ", "ü,", "\t"];
  return Array.from(
    { length: count },
    (_, i) => i % 9 === 4 ? "" : `${i}:${pieces[i % pieces.length]!.repeat((i * 37) % 90)}`,
  );
}

/** `[line, text]` pairs of a decoded run, sorted. */
function pairs(records: StreamRecord<unknown>[]): string[] {
  return records.map((r) => JSON.stringify([Number(r.headers?.line), r.value])).sort();
}

async function withDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "sluice-striped-" });
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

for (const mode of MODES) {
  Deno.test(`fileSource() striped over 2 and 3 instances gives every line once, numbered (${mode})`, () =>
    withDir(async (dir) => {
      const path = `${dir}/in.txt`;
      // No trailing newline: the last line ends the file.
      await Deno.writeTextFile(path, sampleLines(2500).join("\n"));
      const expected = (await Deno.readTextFile(path)).split("\n")
        .map((text, i) => JSON.stringify([i + 1, text])).sort();
      assert.equal(expected.length, 2500);
      for (const chunkBytes of [64, 200]) {
        const source = { path, format: "lines", chunkBytes } as const;
        const single = await read<string>(mode, source, decodeLines(), 1);
        assert.deepEqual(
          pairs(single.records),
          expected,
          `chunkBytes ${chunkBytes}, parallelism 1`,
        );
        for (const n of [2, 3]) {
          const { records, dead } = await read<string>(mode, source, decodeLines(), n);
          const where = `chunkBytes ${chunkBytes}, parallelism ${n}`;
          assert.equal(records.length, 2500, where);
          assert.ok(records.every((r) => r.headers?.file === path), where);
          assert.deepEqual(pairs(records), pairs(single.records), where);
          assert.deepEqual(dead, []);
        }
      }
    }));

  Deno.test(`fileSource() striped hands instance i chunks i, i + N, … once each (${mode})`, () =>
    withDir(async (dir) => {
      const path = `${dir}/in.txt`;
      await Deno.writeTextFile(path, sampleLines(2000).join("\n"));
      const source = { path, format: "lines", chunkBytes: 100 } as const;
      // The cut of a parallelism-1 read: chunk j starts at line starts[j].
      const cut = await read<FileChunk>(mode, source, undefined, 1);
      const chunks = cut.records.map((r) => `${r.headers?.offset}@${r.headers?.line}`);
      const starts = cut.records.map((r) => Number(r.headers?.line));
      assert.ok(chunks.length > 100, `only ${chunks.length} chunks`);
      assert.deepEqual(starts, [...starts].sort((a, b) => a - b));
      for (const n of [2, 3]) {
        const striped = await read<FileChunk>(mode, source, undefined, n);
        const got = striped.records.map((r) => `${r.headers?.offset}@${r.headers?.line}`);
        assert.deepEqual(got.sort(), [...chunks].sort(), `parallelism ${n}: the same chunks, once`);
        // Instance i has the chunk indexes ≡ i (mod n).
        const share = Array.from({ length: n }, (_, i) => Math.ceil((chunks.length - i) / n));
        assert.deepEqual(perInstance(striped.counters, "file", "out"), share);
        // Decoded, instance i emits the lines of exactly those chunks.
        const lines = Array.from({ length: n }, () => 0);
        starts.forEach((s, j) => (lines[j % n]! += (starts[j + 1] ?? 2001) - s));
        const decoded = await read<string>(mode, source, decodeLines(), n);
        assert.deepEqual(perInstance(decoded.counters, "file", "out"), share);
        assert.deepEqual(perInstance(decoded.counters, "decodeLines", "in"), share);
        assert.deepEqual(perInstance(decoded.counters, "decodeLines", "out"), lines);
      }
    }));

  Deno.test(`fileSource() striped CSV decodes every row with the header's columns (${mode})`, () =>
    withDir(async (dir) => {
      const path = `${dir}/in.csv`;
      const rows = Array.from({ length: 1500 }, (_, i) => ({
        id: String(i),
        name: `n ${i}, é€😀${"x".repeat(i % 50)}`,
        qty: String(i % 7),
      }));
      const body = rows.map((r) => `${r.id},"${r.name}",${r.qty}`).join("\n");
      await Deno.writeTextFile(path, `id,name,qty\n${body}`);
      const { records, dead, counters } = await read<Record<string, string>>(
        mode,
        { path, format: "csv", chunkBytes: 128 },
        decodeCsv(),
        2,
      );
      assert.deepEqual(dead, []);
      const byLine = records.sort((a, b) => Number(a.headers?.line) - Number(b.headers?.line));
      assert.deepEqual(byLine.map((r) => r.value), rows);
      assert.deepEqual(byLine.map((r) => r.headers?.line), rows.map((_, i) => String(i + 2)));
      const outs = perInstance(counters, "decodeCsv", "out");
      assert.equal(outs.length, 2);
      assert.ok(outs.every((o) => o > 0), `per instance: ${outs}`);
    }));

  Deno.test(`fileSource() striped dead-letters malformed NDJSON with its line (${mode})`, () =>
    withDir(async (dir) => {
      const path = `${dir}/in.ndjson`;
      const bad = new Set([2, 777, 1333, 2000]);
      const text = (line: number) => bad.has(line) ? `{"id":${line - 1},` : `{"id":${line - 1}}`;
      const lines = Array.from({ length: 2000 }, (_, i) => text(i + 1));
      await Deno.writeTextFile(path, lines.join("\n"));
      const { records, dead, counters } = await read<{ id: number }>(
        mode,
        { path, format: "ndjson", chunkBytes: 100 },
        decodeNdjson(),
        3,
      );
      const good = lines.map((_, i) => i).filter((id) => !bad.has(id + 1));
      assert.deepEqual(records.map((r) => r.value.id).sort((a, b) => a - b), good);
      assert.ok(records.every((r) => r.headers?.line === String(r.value.id + 1)));
      const letters = dead.sort((a, b) =>
        Number(a.record.headers?.line) - Number(b.record.headers?.line)
      );
      assert.deepEqual(
        letters.map((d) => [d.record.value, d.record.headers?.line, d.record.headers?.file]),
        [...bad].map((line) => [text(line), String(line), path]),
      );
      for (const d of letters) {
        const line = d.record.headers?.line;
        assert.match(d.error.message, new RegExp(`in\\.ndjson:${line} is malformed`));
      }
      // The bad lines fell into the stripes of more than one instance.
      const perStripe = (counters.decodeNdjson?.instances ?? []).map((c) => c.deadLettered);
      assert.equal(perStripe.reduce((a, b) => a + b, 0), 4);
      assert.ok(perStripe.filter((d) => d > 0).length >= 2, `per instance: ${perStripe}`);
    }));

  Deno.test(`fileSource() with a glob and parallelism 2 reads each file whole in one instance (${mode})`, () =>
    withDir(async (dir) => {
      const files = Array.from({ length: 8 }, (_, k) => ({
        path: `${dir}/f${k}.log`,
        lines: sampleLines(60 + 37 * k).map((l) => `f${k} ${l}`),
      }));
      for (const f of files) await Deno.writeTextFile(f.path, f.lines.join("\n") + "\n");
      // Files go to instances by path hash (64 partitions, the pipeline default).
      const owner = (path: string) => partitionOf(path, 64) % 2;
      const owned = [0, 1].map((i) =>
        files.filter((f) => owner(f.path) === i).reduce((sum, f) => sum + f.lines.length, 0)
      );
      assert.ok(owned.every((n) => n > 0), `both instances own a file: ${owned}`);
      const { records, counters } = await read<string>(
        mode,
        { glob: `${dir}/*.log`, format: "lines", chunkBytes: 64 },
        decodeLines(),
        2,
      );
      const got = records.map((r) => JSON.stringify([r.headers?.file, r.headers?.line, r.value]));
      const expected = files.flatMap((f) =>
        f.lines.map((text, i) => JSON.stringify([f.path, String(i + 1), text]))
      );
      assert.deepEqual(got.sort(), expected.sort());
      assert.deepEqual(perInstance(counters, "decodeLines", "out"), owned);
    }));
}

Deno.test("fileSource() striped and decodeNdjson() run fused, one worker per instance", () =>
  withDir(async (dir) => {
    const path = `${dir}/in.ndjson`;
    const ids = Array.from({ length: 1000 }, (_, i) => i);
    await Deno.writeTextFile(path, ids.map((id) => JSON.stringify({ id })).join("\n") + "\n");
    const source = { path, format: "ndjson", chunkBytes: 200 } as const;
    const fused = await read<{ id: number }>("workers", source, decodeNdjson(), 2);
    assert.deepEqual(fused.workers, ["collect#0", "file+decodeNdjson#0", "file+decodeNdjson#1"]);
    // Kept apart, the same read takes a worker per stage instance and gives the same records.
    const apart = await read<{ id: number }>("workers", source, decodeNdjson(), 2, false);
    assert.deepEqual(apart.workers, [
      "collect#0",
      "decodeNdjson#0",
      "decodeNdjson#1",
      "file#0",
      "file#1",
    ]);
    for (const { records } of [fused, apart]) {
      assert.deepEqual(records.map((r) => r.value.id).sort((a, b) => a - b), ids);
    }
  }));

Deno.test("fileSource() striped from a startAt gives every later line once", () =>
  withDir(async (dir) => {
    const path = `${dir}/in.txt`;
    const lines = sampleLines(600);
    await Deno.writeTextFile(path, lines.join("\n"));
    // Line 201 starts after the bytes of lines 1..200 and their newlines.
    const byteOffset = new TextEncoder().encode(lines.slice(0, 200).join("\n") + "\n").length;
    const startAt = { file: path, byteOffset, line: 201 };
    const expected = lines.slice(200).map((text, i) => JSON.stringify([i + 201, text])).sort();
    for (const n of [2, 3]) {
      const source = { path, format: "lines", chunkBytes: 64, startAt } as const;
      const { records } = await read<string>("inline", source, decodeLines(), n);
      assert.deepEqual(pairs(records), expected, `parallelism ${n}`);
    }
  }));

// The parallelism given to fileSource() itself (its `stageOptions`) counts like one given to
// `.from()`; only a pipeline-wide default parallelism leaves sources at 1.
Deno.test({
  name: "fileSource(options, { parallelism: 2 }) stripes like .from(ref, { parallelism: 2 })",
  fn: () =>
    withDir(async (dir) => {
      const path = `${dir}/in.txt`;
      await Deno.writeTextFile(path, sampleLines(500).join("\n"));
      const p = pipeline({ mode: "inline", signals: false });
      const out = collect<string>();
      p.from(fileSource({ path, format: "lines", chunkBytes: 64 }, { parallelism: 2 }))
        .via(decodeLines({}, { parallelism: 2 }))
        .to(out.sink);
      await p.run();
      await out.clear();
      assert.equal(p.counters().file?.instances.length, 2);
    }),
});

Deno.test("FileCursor cuts skipped chunks exactly where it cuts read ones, with no bytes", async () => {
  const { FileCursor } = await import("../../connectors/file/_file_cursor.ts");
  const dir = await Deno.makeTempDir({ prefix: "sluice-skip-" });
  const path = `${dir}/in.txt`;
  // Lines shorter and longer than a chunk (up to ~5 chunks), multi-byte characters included.
  const text = sampleLines(400).map((l, i) => i % 50 === 7 ? l.repeat(6) : l).join("\n") + "\n";
  await Deno.writeTextFile(path, text);
  const whole = new TextEncoder().encode(text);
  try {
    for (const chunkBytes of [16, 64, 300]) {
      const options = {
        gzip: false,
        lines: true,
        chunkBytes,
        maxLineBytes: 1 << 20,
        header: false,
      };
      const cut = async (skip?: (i: number) => boolean) => {
        const cursor = await FileCursor.open(path, options);
        const chunks: { offset: number; line: number; length: number; skipped: boolean }[] = [];
        for (let c = await cursor.next(true, skip); c; c = await cursor.next(true, skip)) {
          chunks.push({
            offset: c.offset,
            line: c.line,
            length: c.bytes.length,
            skipped: !!c.skipped,
          });
          if (!c.skipped) {
            assert.deepEqual(c.bytes, whole.subarray(c.offset, c.offset + c.bytes.length));
          }
        }
        cursor.close();
        return chunks;
      };
      const all = await cut();
      for (const [n, i] of [[2, 0], [2, 1], [3, 2]]) {
        const mine = await cut((index) => index % n! !== i);
        assert.equal(mine.length, all.length, `chunkBytes ${chunkBytes}`);
        mine.forEach((c, k) => {
          assert.equal(c.offset, all[k]!.offset);
          assert.equal(c.line, all[k]!.line);
          assert.equal(c.skipped, k % n! !== i);
          assert.equal(c.length, c.skipped ? 0 : all[k]!.length);
        });
      }
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
