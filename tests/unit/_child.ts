// Runs a script in a child `deno run`, for tests of what might crash the whole process.

const root = new URL("../../", import.meta.url);

/** What a child run gave: its exit code, stderr, whether it was killed, its last JSON line. */
export interface ChildResult {
  code: number;
  stderr: string;
  timedOut: boolean;
  out?: Record<string, unknown>;
}

/**
 * Runs `body` (after imports of mod.ts as `S` and of `fixtures`' URL as `fx`) in a child
 * `deno run` with the project's config; it prints one JSON line last. Killed after `timeoutMs`.
 */
export async function inChild(
  body: string,
  fixtures: URL,
  timeoutMs = 20_000,
): Promise<ChildResult> {
  const script = await Deno.makeTempFile({ prefix: "sluice-child-", suffix: ".ts" });
  await Deno.writeTextFile(
    script,
    `import * as S from ${JSON.stringify(new URL("mod.ts", root).href)};
const fx = ${JSON.stringify(fixtures.href)};
void fx;
${body}
`,
  );
  try {
    const proc = new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", "--config", new URL("deno.json", root).pathname, script],
      stdout: "piped",
      stderr: "piped",
      env: { NO_COLOR: "1" },
    }).spawn();
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      proc.kill("SIGKILL");
    }, timeoutMs);
    const child = await proc.output();
    clearTimeout(timer);
    const stdout = new TextDecoder().decode(child.stdout).trim().split("\n").at(-1) ?? "";
    let out: Record<string, unknown> | undefined;
    try {
      out = JSON.parse(stdout);
    } catch {
      out = undefined;
    }
    return { code: child.code, stderr: new TextDecoder().decode(child.stderr), timedOut, out };
  } finally {
    await Deno.remove(script).catch(() => {});
  }
}
