// Review 8: adversarial tests of the changes after 1d2b6dc (bad input handling), inline and in
// workers: config checks (unsendable configs), non-record output of processors and sources,
// records structured clone refuses on a channel (dead-lettered, the rest sent), hook contracts,
// permissions and scale() right after run(). The standard: "Bad input gets a clear error (config:
// the zod path and message, before anything starts) or a dead-letter entry with the reason; it
// never crashes the runtime and nothing is silently dropped."
//
// Tests named "BUG: …" fail on the code as reviewed (9eafe64); each says what is expected, what
// happens and where the cause is. The others pass and stay as regression tests. Runs that might
// crash the process run in a child `deno run`; runs that might hang are bounded (`settles`).
import assert from "node:assert/strict";
import {
  collect,
  ConfigError,
  type DeadLetter,
  fromArray,
  map,
  memoryDeadLetters,
  pipeline,
  PipelineError,
  type RunSummary,
  stage,
} from "../../mod.ts";
import { unsendable } from "../../actors/_clone.ts";
import { fixtureRef } from "./_fixture_ref.ts";
import { settles } from "./_wait.ts";

const fixtures = new URL("./fixtures/review8_stages.ts", import.meta.url);
const ref = fixtureRef(fixtures);
const root = new URL("../../", import.meta.url);
const modes = ["inline", "workers"] as const;
type Mode = (typeof modes)[number];

type Id = { id: number; bad?: unknown; wm?: number; kind?: string };

/** run()'s outcome, caught at once so that a rejection is never unhandled. */
function outcome<T>(running: Promise<T>): Promise<T | Error> {
  return running.catch((e: Error) => e);
}

/** The ids source of the fixtures. */
function ids(
  count: number,
  extra: {
    perPull?: number;
    delayMs?: number;
    keys?: number;
    junkAt?: number[];
    junk?: string[];
    tailMs?: number;
  } = {},
) {
  return ref<never, Id>("ids", { count, ...extra }, "source");
}

/** A pipeline for these tests: no signal handlers, dead letters in memory, short stops. */
function withDeadLetters(mode: Mode, extra: Record<string, unknown> = {}) {
  const dead = memoryDeadLetters();
  return {
    p: pipeline({ mode, signals: false, deadLetter: dead, stopTimeoutMs: 3000, ...extra }),
    dead,
  };
}

function reasons(dead: { entries: DeadLetter[] }): string[] {
  return dead.entries.map((e) => `${e.stage}: ${e.error.code}: ${e.error.message}`);
}

/** The ids of values that reached a collector, sorted, without the wmSpy's records. */
async function idsOf(out: { values(): Promise<Id[]> }): Promise<number[]> {
  return (await out.values()).map((v) => v?.id).filter((id): id is number => typeof id === "number" && id >= 0)
    .sort((a, b) => a - b);
}

function range(n: number, skip: number[] = []): number[] {
  return Array.from({ length: n }, (_, i) => i).filter((i) => !skip.includes(i));
}

/**
 * Runs `body` (after imports of mod.ts as `S` and the fixture module URL as `fx`) in a child
 * `deno run`; it prints one JSON line. Killed after 20 s.
 */
async function inChild(body: string): Promise<{
  code: number;
  stderr: string;
  timedOut: boolean;
  out?: Record<string, unknown>;
}> {
  const script = await Deno.makeTempFile({ prefix: "sluice-r8-child-", suffix: ".ts" });
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
    }, 20_000);
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

// ---------------------------------------------------------------------------------------------
// Exploration
// ---------------------------------------------------------------------------------------------

for (const mode of modes) {
  Deno.test(`[${mode}] explore`, async () => {
    const show = async (label: string, build: (p: ReturnType<typeof pipeline>, out: ReturnType<typeof collect<Id>>, out2: ReturnType<typeof collect<Id>>) => void) => {
      const { p, dead } = withDeadLetters(mode);
      const out = collect<Id>(), out2 = collect<Id>();
      build(p, out, out2);
      const summary = await outcome(settles(p.run(), 15_000, "run()"));
      const st = summary instanceof Error ? String(summary).slice(0, 300) : JSON.stringify(Object.fromEntries(Object.entries(summary.stages).map(([k, v]) => [k, { in: v.in, out: v.out, dl: v.deadLettered, r: v.restarts }])));
      console.log(mode, label, st, JSON.stringify(reasons(dead)).slice(0, 400), JSON.stringify(await idsOf(out)), JSON.stringify((await out2.records()).slice(0, 5)), JSON.stringify((await out.values()).find((v) => v?.id === 3)));
      await out.clear(); await out2.clear();
    };
    if (0) await show("fanout", (p, out, out2) => {
      const f = p.from(ids(10, { perPull: 2, delayMs: 2 })).via(ref("poison", { at: [3], what: "function" }));
      f.to(out.sink, { fuse: false });
      f.to(out2.sink, { fuse: false });
    });
    if (0) await show("side", (p, out, out2) => {
      const f = p.from(ids(10, { perPull: 2, delayMs: 2 })).via(ref("poison", { at: [3], what: "function", via: "side", side: "aside" }));
      f.to(out.sink, { fuse: false });
      f.sideOutput("aside").to(out2.sink);
    });
    for (const what of ["url"]) {
      await show(what + "/differs", (p, out) => {
        p.from(ids(10, { perPull: 2, delayMs: 2 })).via(ref("poison", { at: [3], what, shape: "differs" }), { maxRestarts: 1 }).to(out.sink, { fuse: false });
      });
      await show(what + "/same", (p, out) => {
        p.from(ids(10, { perPull: 2, delayMs: 2 })).via(ref("poison", { at: [3], what }), { maxRestarts: 1 }).to(out.sink, { fuse: false });
      });
    }
    for (const how of ["string", "null", "no-value"]) {
      await show("emitTo junk " + how, (p, out, out2) => {
        const f = p.from(ids(10, { perPull: 2, delayMs: 2 })).via(ref("junkOut", { at: [3], how, via: "side", side: "aside" }), { maxRestarts: 1 });
        f.to(out.sink, { fuse: false });
        f.sideOutput("aside").to(out2.sink);
      });
    }
    await show("proxy config", (p, out) => {
      p.from(ids(3)).via(ref("anyConfig", { extra: new Proxy({ a: 1 }, {}) })).to(out.sink);
    });
  });
}
