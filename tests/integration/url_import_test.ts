// Users import Sluice by URL, from a directory with no deno.json: no import map, no "unstable"
// settings. This runs such a script in a subprocess: it must type-check, run a workers-mode
// pipeline with the two unstable flags, and fail with a clear message (not exit code 70, which is
// what Deno does when a Worker asks for permissions without --unstable-worker-options) when they
// are missing.
import assert from "node:assert/strict";

const MOD_URL = new URL("../../mod.ts", import.meta.url).href;

const SCRIPT = `
import { collect, fromArray, map, pipeline } from "${MOD_URL}";

const out = collect<number>();
const summary = await pipeline({ mode: "workers", signals: false })
  .from(fromArray([1, 2, 3].map((value) => ({ value, ts: 0 }))))
  .via(map((n: number) => n * 10), { name: "times10" })
  .to(out.sink)
  .run();
const values = (await out.values()).sort((a, b) => a - b);
await out.clear();
console.log("result " + JSON.stringify({ values, in: summary.stages.times10?.in }));
`;

async function deno(args: string[], cwd: string) {
  const { code, stdout, stderr } = await new Deno.Command(Deno.execPath(), {
    args,
    cwd,
    env: { NO_COLOR: "1" },
    stdout: "piped",
    stderr: "piped",
  }).output();
  const decode = (b: Uint8Array) => new TextDecoder().decode(b);
  return { code, stdout: decode(stdout), stderr: decode(stderr) };
}

async function scriptDir(): Promise<string> {
  const dir = await Deno.makeTempDir({ prefix: "sluice-url-import-" });
  await Deno.writeTextFile(`${dir}/main.ts`, SCRIPT);
  return dir;
}

Deno.test("mod.ts imported by absolute URL type-checks and runs workers with the unstable flags", async () => {
  const dir = await scriptDir();
  try {
    const check = await deno(["check", "main.ts"], dir);
    assert.equal(check.code, 0, `deno check failed:\n${check.stderr}`);
    const run = await deno(
      ["run", "--unstable-kv", "--unstable-worker-options", "-A", "main.ts"],
      dir,
    );
    assert.equal(run.code, 0, `deno run failed:\n${run.stderr}`);
    assert.match(run.stdout, /^result \{"values":\[10,20,30\],"in":3\}$/m);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("mod.ts imported by URL without the unstable flags fails with a clear message", async () => {
  const dir = await scriptDir();
  try {
    const run = await deno(["run", "-A", "main.ts"], dir);
    assert.notEqual(run.code, 0);
    assert.notEqual(run.code, 70, `exit code 70 (Deno's own abort):\n${run.stderr}`);
    assert.match(
      run.stderr,
      /Cannot start workers: .*--unstable-kv --unstable-worker-options/,
      run.stderr,
    );
    assert.doesNotMatch(run.stdout, /^result /m);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
