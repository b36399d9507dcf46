import assert from "node:assert/strict";

const script = new URL("./fixtures/signal_pipeline.ts", import.meta.url);

for (const signal of ["SIGTERM", "SIGINT"] as const) {
  Deno.test(`Pipeline drains on ${signal}: sources stop, in-flight records are written, exit 0`, async () => {
    const out = await Deno.makeTempFile();
    const child = new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", "--unstable-kv", "--unstable-worker-options", script.pathname, out],
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
    let text = "";
    while (!text.includes("started")) {
      const { value, done } = await reader.read();
      if (done) break;
      text += value;
    }
    // Let records flow, then ask for a graceful stop.
    await new Promise((r) => setTimeout(r, 300));
    child.kill(signal);
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      text += value;
    }
    const status = await child.status;
    const stderr = await new Response(child.stderr).text();
    assert.equal(status.code, 0, stderr);
    const stages = JSON.parse(text.trim().split("\n").at(-1)!);
    const lines = (await Deno.readTextFile(out)).split("\n").filter(Boolean);
    assert.ok(stages.paced.out > 0);
    // Everything the source emitted was written before exit: nothing in flight was lost.
    assert.equal(stages.slow.in, stages.paced.out);
    assert.equal(lines.length, stages.paced.out);
    assert.ok(stages.paced.out < 10_000_000, "the source stopped early");
    await Deno.remove(out);
  });
}
