import assert from "node:assert/strict";
import { gunzipSync } from "node:zlib";
import {
  collect,
  type DeadLetter,
  fromArray,
  KeyedState,
  memoryDeadLetters,
  pipeline,
  type StageContext,
  type StageRef,
  type StreamRecord,
} from "../../actors/mod.ts";
import {
  decodeCsv,
  decodeLines,
  decodeNdjson,
  type FileChunk,
  fileSink,
  fileSinkStage,
  fileSource,
  type FileSourceOptions,
  ndjsonFile,
} from "../../connectors/file/mod.ts";

type Mode = "inline" | "workers";

async function tempDir(): Promise<string> {
  return await Deno.makeTempDir({ prefix: "sluice-file-" });
}

/** Polls `check` until it returns true, failing after `ms`. */
async function until(check: () => Promise<boolean> | boolean, ms = 8000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error("Condition not met in time");
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** Runs fileSource → decoder → collect and returns the records and dead letters. */
async function decodeFile<T>(
  mode: Mode,
  source: FileSourceOptions,
  decoder: "lines" | "ndjson" | "csv",
  parallelism = 1,
): Promise<{ records: StreamRecord<T>[]; dead: DeadLetter[] }> {
  const dead = memoryDeadLetters();
  const out = collect<T>();
  const decode = decoder === "lines"
    ? decodeLines({}, { parallelism })
    : decoder === "ndjson"
    ? decodeNdjson({}, { parallelism })
    : decodeCsv({}, { parallelism });
  try {
    await pipeline({ mode, signals: false, deadLetter: dead })
      .from(fileSource(source))
      .via(decode as StageRef<FileChunk, T>)
      .to(out.sink)
      .run();
    return { records: await out.records() as StreamRecord<T>[], dead: dead.entries };
  } finally {
    await out.clear();
  }
}

for (const mode of ["inline", "workers"] as const) {
  Deno.test(`fileSource() → decodeNdjson() → fileSink() round-trips NDJSON (${mode})`, async () => {
    const dir = await tempDir();
    const input = Array.from({ length: 500 }, (_, i) => ({ id: i, name: `n${i}`, tags: ["x"] }));
    await Deno.writeTextFile(`${dir}/in.ndjson`, input.map((v) => JSON.stringify(v)).join("\n"));
    await pipeline({ mode, signals: false })
      .from(fileSource({ path: `${dir}/in.ndjson`, format: "ndjson", chunkBytes: 1000 }))
      .via(decodeNdjson())
      .to(fileSink({ path: `${dir}/out/result.ndjson`, format: "ndjson" }))
      .run();
    const lines = (await Deno.readTextFile(`${dir}/out/result.ndjson`)).trimEnd().split("\n");
    assert.deepEqual(lines.map((l) => JSON.parse(l)), input);
    await Deno.remove(dir, { recursive: true });
  });

  Deno.test(`fileSource() → decodeCsv() → fileSink() round-trips CSV with quotes (${mode})`, async () => {
    const dir = await tempDir();
    const csv = 'sku,name,qty\na1,"Widget, large",3\nb2,"Say ""hi""",5\nc3,"two\nlines",1\n';
    await Deno.writeTextFile(`${dir}/in.csv`, csv);
    await pipeline({ mode, signals: false })
      .from(fileSource({ path: `${dir}/in.csv`, format: "csv" }))
      .via(decodeCsv())
      .to(fileSink({ path: `${dir}/out.csv`, format: "csv" }))
      .run();
    assert.equal(await Deno.readTextFile(`${dir}/out.csv`), csv);
    const { records } = await decodeFile<Record<string, string>>(
      mode,
      { path: `${dir}/in.csv`, format: "csv" },
      "csv",
    );
    assert.deepEqual(records.map((r) => r.value.name), ["Widget, large", 'Say "hi"', "two\nlines"]);
    assert.deepEqual(records.map((r) => r.headers?.line), ["2", "3", "4"]);
    await Deno.remove(dir, { recursive: true });
  });

  Deno.test(`fileSource() → decodeLines() → fileSink() round-trips lines (${mode})`, async () => {
    const dir = await tempDir();
    const text = "alpha\r\nbeta\n\ngamma\n";
    await Deno.writeTextFile(`${dir}/in.txt`, text);
    await pipeline({ mode, signals: false })
      .from(fileSource({ path: `${dir}/in.txt`, format: "lines", chunkBytes: 4 }))
      .via(decodeLines())
      .to(fileSink({ path: `${dir}/out.txt`, format: "lines" }))
      .run();
    assert.equal(await Deno.readTextFile(`${dir}/out.txt`), "alpha\nbeta\n\ngamma\n");
    await Deno.remove(dir, { recursive: true });
  });
}

Deno.test("decodeNdjson() with parallelism 2 gives the same multiset as with 1", async () => {
  const dir = await tempDir();
  const lines = Array.from({ length: 3000 }, (_, i) => JSON.stringify({ id: i }));
  await Deno.writeTextFile(`${dir}/in.ndjson`, lines.join("\n") + "\n");
  const source = { path: `${dir}/in.ndjson`, format: "ndjson", chunkBytes: 2048 } as const;
  const key = (r: StreamRecord<{ id: number }>) => `${r.value.id}@${r.headers?.line}`;
  const single = await decodeFile<{ id: number }>("workers", source, "ndjson", 1);
  const double = await decodeFile<{ id: number }>("workers", source, "ndjson", 2);
  assert.equal(single.records.length, 3000);
  assert.deepEqual(double.records.map(key).sort(), single.records.map(key).sort());
  // Line numbers follow the file exactly: id i is on line i + 1.
  assert.ok(single.records.every((r) => r.headers?.line === String(r.value.id + 1)));
  await Deno.remove(dir, { recursive: true });
});

Deno.test("fileSource() never splits a line or a UTF-8 character at a chunk boundary", async () => {
  const dir = await tempDir();
  // Multi-byte characters (2, 3 and 4 bytes) and lines longer than a chunk.
  const lines = ["héllo wörld", "€€€€€€€€", "😀😀😀 emoji line", "x", "ünïcödé at the end"];
  await Deno.writeTextFile(`${dir}/in.txt`, lines.join("\n"));
  for (const chunkBytes of [1, 3, 5, 7, 13]) {
    const { records } = await decodeFile<string>(
      "inline",
      { path: `${dir}/in.txt`, format: "lines", chunkBytes },
      "lines",
    );
    assert.deepEqual(records.map((r) => r.value), lines, `chunkBytes ${chunkBytes}`);
    assert.deepEqual(records.map((r) => r.headers?.line), ["1", "2", "3", "4", "5"]);
  }
  await Deno.remove(dir, { recursive: true });
});

Deno.test("fileSink() gzip output is read back by fileSource() with gzip auto", async () => {
  const dir = await tempDir();
  const records = Array.from({ length: 200 }, (_, i) => ({ value: { i }, ts: i }));
  await pipeline({ mode: "workers", signals: false })
    .from(fromArray(records), { batchSize: 32 })
    .to(fileSink({ path: `${dir}/out.ndjson.gz`, format: "ndjson", gzip: true }))
    .run();
  const raw = await Deno.readFile(`${dir}/out.ndjson.gz`);
  assert.deepEqual([raw[0], raw[1]], [0x1f, 0x8b]);
  const text = new TextDecoder().decode(gunzipSync(raw));
  assert.equal(text.trimEnd().split("\n").length, 200);
  const back = await decodeFile<{ i: number }>(
    "inline",
    { path: `${dir}/out.ndjson.gz`, format: "ndjson", chunkBytes: 100 },
    "ndjson",
  );
  assert.deepEqual(back.records.map((r) => r.value.i), records.map((r) => r.value.i));
  await Deno.remove(dir, { recursive: true });
});

Deno.test("fileSource() reads a glob of files in path order", async () => {
  const dir = await tempDir();
  await Deno.mkdir(`${dir}/logs/2024`, { recursive: true });
  await Deno.writeTextFile(`${dir}/logs/b.log`, "b1\nb2\n");
  await Deno.writeTextFile(`${dir}/logs/a.log`, "a1\n");
  await Deno.writeTextFile(`${dir}/logs/c.txt`, "not me\n");
  await Deno.writeTextFile(`${dir}/logs/2024/d.log`, "d1\n");
  const flat = await decodeFile<string>(
    "workers",
    { glob: `${dir}/logs/*.log`, format: "lines" },
    "lines",
  );
  assert.deepEqual(flat.records.map((r) => r.value), ["a1", "b1", "b2"]);
  assert.equal(flat.records[1]?.headers?.file, `${dir}/logs/b.log`);
  const deep = await decodeFile<string>(
    "inline",
    { glob: `${dir}/**/*.log`, format: "lines" },
    "lines",
  );
  assert.deepEqual(deep.records.map((r) => r.value), ["d1", "a1", "b1", "b2"]);
  await Deno.remove(dir, { recursive: true });
});

Deno.test("decodeNdjson() and decodeCsv() dead-letter malformed lines with file and line", async () => {
  const dir = await tempDir();
  await Deno.writeTextFile(`${dir}/in.ndjson`, '{"a":1}\n{"a":\n\n{"a":3}\nnope\n');
  const nd = await decodeFile<{ a: number }>(
    "workers",
    { path: `${dir}/in.ndjson`, format: "ndjson", chunkBytes: 8 },
    "ndjson",
  );
  assert.deepEqual(nd.records.map((r) => r.value.a), [1, 3]);
  assert.deepEqual(nd.dead.map((d) => [d.record.value, d.record.headers?.line]), [
    ['{"a":', "2"],
    ["nope", "5"],
  ]);
  assert.equal(nd.dead[0]?.record.headers?.file, `${dir}/in.ndjson`);
  assert.match(nd.dead[0]!.error.message, /in\.ndjson:2 is malformed/);

  await Deno.writeTextFile(`${dir}/in.csv`, 'a,b\n1,2\n3\n"open,4\n5,6\n');
  const csv = await decodeFile<Record<string, string>>(
    "inline",
    { path: `${dir}/in.csv`, format: "csv" },
    "csv",
  );
  assert.deepEqual(csv.records.map((r) => r.value), [{ a: "1", b: "2" }]);
  assert.deepEqual(csv.dead.map((d) => d.record.headers?.line), ["3", "4"]);
  assert.match(csv.dead[0]!.error.message, /in\.csv:3 is malformed \(expected 2 fields, got 1\)/);
  await Deno.remove(dir, { recursive: true });
});

Deno.test("decodeNdjson({ lineHeaders: false }) emits records without headers; dead letters keep them", async () => {
  const dir = await tempDir();
  const path = `${dir}/in.ndjson`;
  await Deno.writeTextFile(path, '{"a":1,"ts":5}\n{"a":\n{"a":3,"ts":7}\n{"a":4}\n');
  for (const mode of ["inline", "workers"] as const) {
    const dead = memoryDeadLetters();
    const out = collect<{ a: number }>();
    await pipeline({ mode, signals: false, deadLetter: dead })
      .from(fileSource({ path, format: "ndjson", chunkBytes: 16 }))
      .via(decodeNdjson<{ a: number }>({ tsField: "ts", lineHeaders: false }))
      .to(out.sink)
      .run();
    const records = await out.records();
    await out.clear();
    assert.deepEqual(records.map((r) => [r.value.a, r.ts, r.headers]), [
      [1, 5, undefined],
      [3, 7, undefined],
    ], mode);
    // A malformed line, and one without its time field: both still say where they were.
    assert.deepEqual(dead.entries.map((d) => [d.record.value, d.record.headers]), [
      ['{"a":', { file: path, line: "2" }],
      ['{"a":4}', { file: path, line: "4" }],
    ], mode);
  }
  assert.throws(
    () => decodeNdjson({ lineHeaders: "no" as unknown as boolean }),
    /lineHeaders/,
  );
  await Deno.remove(dir, { recursive: true });
});

Deno.test("fileSource() resumes from an acked position with startAt", async () => {
  const dir = await tempDir();
  await Deno.writeTextFile(`${dir}/a.log`, "a1\na2\n");
  await Deno.writeTextFile(`${dir}/b.log`, "b1\nb2\nb3\n");
  const { records } = await decodeFile<string>(
    "inline",
    {
      glob: `${dir}/*.log`,
      format: "lines",
      startAt: { file: `${dir}/b.log`, byteOffset: 3, line: 2 },
    },
    "lines",
  );
  assert.deepEqual(records.map((r) => [r.value, r.headers?.line]), [["b2", "2"], ["b3", "3"]]);
  await Deno.remove(dir, { recursive: true });
});

Deno.test("fileSource() with follow reads appended lines and survives rotation and truncation", async () => {
  const dir = await tempDir();
  const path = `${dir}/app.log`;
  await Deno.writeTextFile(path, "one\ntwo\n");
  const out = collect<string>();
  const p = pipeline({ mode: "workers", signals: false });
  p.from(fileSource({ path, format: "lines", follow: true, pollMs: 20 }))
    .via(decodeLines())
    .to(out.sink);
  const running = p.run();
  const seen = async (n: number) => (await out.values()).length >= n;
  try {
    await until(() => seen(2));
    await Deno.writeTextFile(path, "three\nfour-", { append: true });
    await until(() => seen(3));
    await Deno.writeTextFile(path, "half\n", { append: true }); // completes the held line
    await until(() => seen(4));
    // Rotation: rename, the writer still finishes a line in the old file, then a new file starts.
    await Deno.rename(path, `${path}.1`);
    await Deno.writeTextFile(`${path}.1`, "late\n", { append: true });
    await Deno.writeTextFile(path, "new1\nnew2\n");
    await until(() => seen(7));
    // Truncation: the file is emptied and written again from the start.
    await Deno.writeTextFile(path, "t1\n");
    await until(() => seen(8));
  } finally {
    await p.stop();
    await running;
  }
  assert.deepEqual(await out.values(), [
    "one",
    "two",
    "three",
    "four-half",
    "late",
    "new1",
    "new2",
    "t1",
  ]);
  await out.clear();
  await Deno.remove(dir, { recursive: true });
});

Deno.test("fileSink() rotation renames complete parts atomically", async () => {
  const dir = await tempDir();
  const count = 2000;
  const records = Array.from({ length: count }, (_, i) => ({ value: { i }, ts: i }));
  const p = pipeline({ mode: "workers", signals: false })
    .from(fromArray(records), { batchSize: 50 })
    .to(fileSink({ path: `${dir}/out/part.ndjson`, format: "ndjson", rotate: { bytes: 2000 } }));
  const running = p.run();
  // A reader that lists the directory while parts are written: a visible part is whole and
  // never changes afterwards.
  const seen = new Map<string, string>();
  let done = false;
  void running.finally(() => (done = true));
  while (!done) {
    const entries = await Array.fromAsync(Deno.readDir(`${dir}/out`)).catch(() => []);
    for (const e of entries) {
      if (e.name.startsWith(".")) continue;
      const text = await Deno.readTextFile(`${dir}/out/${e.name}`);
      const before = seen.get(e.name);
      if (before !== undefined) assert.equal(text, before, `${e.name} changed after rename`);
      assert.ok(text.endsWith("\n"));
      text.trimEnd().split("\n").forEach((l) => JSON.parse(l));
      seen.set(e.name, text);
    }
    await new Promise((r) => setTimeout(r, 1));
  }
  await running;
  const names = [...Deno.readDirSync(`${dir}/out`)].map((e) => e.name).sort();
  assert.ok(names.length >= 10, `expected many parts, got ${names.length}`);
  assert.ok(names.every((n) => /^part-\d{6}\.ndjson$/.test(n)), names.join());
  const all = names.flatMap((n) =>
    Deno.readTextFileSync(`${dir}/out/${n}`).trimEnd().split("\n").map((l) => JSON.parse(l).i)
  );
  assert.deepEqual(all, records.map((r) => r.value.i));
  await Deno.remove(dir, { recursive: true });
});

Deno.test("fileSink() rotates an idle part by age and completes a part left by a crash", async () => {
  const dir = await tempDir();
  await Deno.writeTextFile(`${dir}/.log-000004.txt.inprogress`, "from a crashed run\n");
  const abort = new AbortController();
  const ctx = {
    stage: "fileSink",
    instance: 0,
    parallelism: 1,
    partitions: 1,
    watermark: -Infinity,
    signal: abort.signal,
    now: () => Date.now(),
    emit: () => {},
    emitTo: () => {},
    deadLetter: () => {},
    keyed: () => new KeyedState(1),
    partitionOf: () => 0,
  } as StageContext<never>;
  const parsed = fileSinkStage.config.safeParse({
    path: `${dir}/log.txt`,
    format: "lines",
    rotate: { ms: 40 },
  });
  assert.ok(parsed.success);
  const sink = await fileSinkStage.open(parsed.data, ctx);
  const names = () => [...Deno.readDirSync(dir)].map((e) => e.name).sort();
  try {
    // The leftover holds acknowledged data: it is completed under its final name at once.
    assert.deepEqual(names(), ["log-000004.txt"]);
    await sink.write([{ value: "a", ts: 0 }, { value: "b", ts: 0 }], ctx);
    assert.deepEqual(names(), [".log-000005.txt.inprogress", "log-000004.txt"]);
    // No more writes: the timer completes the part once it is 40 ms old.
    await until(() => names().includes("log-000005.txt"));
    await sink.write([{ value: "c", ts: 0 }], ctx);
  } finally {
    await sink.close?.(ctx);
  }
  assert.deepEqual(names(), ["log-000004.txt", "log-000005.txt", "log-000006.txt"]);
  assert.equal(await Deno.readTextFile(`${dir}/log-000004.txt`), "from a crashed run\n");
  assert.equal(await Deno.readTextFile(`${dir}/log-000005.txt`), "a\nb\n");
  assert.equal(await Deno.readTextFile(`${dir}/log-000006.txt`), "c\n");
  await Deno.remove(dir, { recursive: true });
});

Deno.test("ndjsonFile() reads and decodes NDJSON in one stage", async () => {
  const dir = await tempDir();
  await Deno.writeTextFile(
    `${dir}/in.ndjson`,
    '{"n":1,"at":"2024-01-01T00:00:00Z"}\n{"n":2,"at":5}\n',
  );
  const out = collect<{ n: number }>();
  await pipeline({ mode: "workers", signals: false })
    .from(ndjsonFile<{ n: number }>({ path: `${dir}/in.ndjson`, tsField: "at" }))
    .to(out.sink)
    .run();
  const records = await out.records();
  assert.deepEqual(records.map((r) => [r.value.n, r.ts, r.headers?.line]), [
    [1, Date.UTC(2024, 0, 1), "1"],
    [2, 5, "2"],
  ]);
  await out.clear();
  await Deno.remove(dir, { recursive: true });
});

Deno.test({
  name: "ndjsonFile() dead-letters malformed lines with file and line",
  async fn() {
    const dir = await tempDir();
    await Deno.writeTextFile(`${dir}/in.ndjson`, '{"n":1}\n{bad\n{"n":3}\n');
    const dead = memoryDeadLetters();
    const out = collect<{ n: number }>();
    await pipeline({ mode: "workers", signals: false, deadLetter: dead })
      .from(ndjsonFile<{ n: number }>(`${dir}/in.ndjson`))
      .to(out.sink)
      .run();
    assert.deepEqual((await out.values()).map((v) => v.n), [1, 3]);
    assert.deepEqual(dead.entries.map((d) => [d.record.value, d.record.headers?.line]), [
      ["{bad", "2"],
    ]);
    await out.clear();
    await Deno.remove(dir, { recursive: true });
  },
});

Deno.test("fileSource() and fileSink() reject bad configs naming the path", () => {
  assert.throws(
    () => fileSource({ format: "lines" }),
    /config\.path: Exactly one of path and glob/,
  );
  assert.throws(
    () => fileSource({ path: "x.gz", format: "lines", follow: true, gzip: true }),
    /config\.gzip: Gzip files cannot be followed/,
  );
  assert.throws(() => fileSink({ path: "out-{n}.txt", format: "lines" }), /config\.path: \{n\}/);
  const ref = fileSink({ path: "/tmp/x/out.ndjson", format: "ndjson" });
  assert.deepEqual(ref.options?.permissions, { read: ["/tmp/x"], write: ["/tmp/x"] });
});
