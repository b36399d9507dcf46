import assert from "node:assert/strict";
import { stdinSource, stdoutSink } from "../../connectors/stdio/mod.ts";

const root = new URL("../../", import.meta.url);

/** Runs a stdin → map → stdout pipeline in a child Deno process and returns its stdout. */
async function runChild(
  mode: "inline" | "workers",
  format: "lines" | "ndjson",
  input: string,
): Promise<{ stdout: string; stderr: string; code: number }> {
  const script = await Deno.makeTempFile({ prefix: "sluice-stdio-", suffix: ".ts" });
  await Deno.writeTextFile(
    script,
    `
import { map, memoryDeadLetters, pipeline } from "${new URL("mod.ts", root)}";
import { stdinSource, stdoutSink } from "${new URL("connectors/stdio/mod.ts", root)}";
const dead = memoryDeadLetters();
await pipeline({ mode: "${mode}", signals: false, deadLetter: dead })
  .from(stdinSource({ format: "${format}" }))
  .via(map((v: unknown) => typeof v === "string" ? v.toUpperCase() : { got: v }))
  .to(stdoutSink({ format: "${format}" }))
  .run();
for (const d of dead.entries) console.error("DEAD", d.record.headers?.line, d.error.message);
`,
  );
  try {
    const child = new Deno.Command(Deno.execPath(), {
      args: ["run", "--unstable-kv", "--unstable-worker-options", "-A", script],
      cwd: root.pathname,
      stdin: "piped",
      stdout: "piped",
      stderr: "piped",
      env: { NO_COLOR: "1" },
    }).spawn();
    const writer = child.stdin.getWriter();
    await writer.write(new TextEncoder().encode(input));
    await writer.close();
    const { stdout, stderr, code } = await child.output();
    const dec = new TextDecoder();
    return { stdout: dec.decode(stdout), stderr: dec.decode(stderr), code };
  } finally {
    await Deno.remove(script);
  }
}

for (const mode of ["inline", "workers"] as const) {
  Deno.test(`stdinSource() → stdoutSink() pipes lines through a pipeline (${mode})`, async () => {
    const lines = Array.from({ length: 2000 }, (_, i) => `line ${i} é`);
    const { stdout, code, stderr } = await runChild(mode, "lines", lines.join("\n"));
    assert.equal(code, 0, stderr);
    assert.deepEqual(stdout.trimEnd().split("\n"), lines.map((l) => l.toUpperCase()));
  });
}

Deno.test("stdinSource() decodes NDJSON in a worker, skipping blank and malformed lines", async () => {
  const { stdout, code, stderr } = await runChild("workers", "ndjson", '{"a":1}\n\nnot json\n[2]');
  assert.equal(code, 0, stderr);
  assert.deepEqual(stdout.trimEnd().split("\n").map((l) => JSON.parse(l)), [
    { got: { a: 1 } },
    { got: [2] },
  ]);
});

Deno.test({
  name: "stdinSource() dead-letters a malformed NDJSON line with its line number",
  async fn() {
    const { stderr } = await runChild("workers", "ndjson", '{"a":1}\nnot json\n');
    assert.match(stderr, /DEAD 2 Cannot parse NDJSON: stdin:2 is malformed/);
  },
});

Deno.test("stdinSource() and stdoutSink() need no permissions and reject bad formats", () => {
  assert.equal(stdinSource().options, undefined);
  assert.equal(stdoutSink().options, undefined);
  assert.throws(() => stdinSource({ format: "csv" as "lines" }), /config\.format/);
});
