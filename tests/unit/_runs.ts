// Running a pipeline in a test that must not hang: its summary or its error, within a bound.
import assert from "node:assert/strict";
import {
  memoryDeadLetters,
  memoryStateBackend,
  type Pipeline,
  pipeline,
  type PipelineOptions,
  type RunSummary,
  type StateBackend,
} from "../../mod.ts";
import { within } from "./_wait.ts";

/** What the fault fixtures' sink writes, one JSON line each: records, or a sum's finals. */
export type Out = {
  id?: number;
  n?: number;
  key?: string;
  sum?: number;
  count?: number;
  final?: true;
};

/** A pipeline for fault tests: no signal handlers, dead letters in memory, checkpoints often. */
export function make(mode: "inline" | "workers", extra: PipelineOptions = {}): Pipeline {
  return pipeline({
    mode,
    signals: false,
    stopTimeoutMs: 3000,
    checkpointMs: 100,
    deadLetter: memoryDeadLetters(),
    ...extra,
  });
}

/** The lines of a file (none if it does not exist). */
export async function lines(path: string): Promise<string[]> {
  return (await Deno.readTextFile(path).catch(() => "")).split("\n").filter(Boolean);
}

/** The values a fixture sink wrote to `path`. */
export async function outputs(path: string): Promise<Out[]> {
  return (await lines(path)).map((l) => JSON.parse(l) as Out);
}

/** Runs `p` for at most `ms`: its summary, or what run() rejected with; a hang fails the test. */
export async function ends(p: Pipeline, ms = 20_000): Promise<RunSummary | Error> {
  const running = p.run();
  running.catch(() => {});
  const got = await within(running.then((s) => s, (e: Error) => e), ms);
  if (got === "timed out") {
    await within(p.stop().catch(() => {}), 5000);
    assert.fail(`the run did not end within ${ms} ms`);
  }
  return got;
}

/** Like `ends`, and run() must resolve. */
export async function resolves(p: Pipeline, ms = 20_000): Promise<RunSummary> {
  const got = await ends(p, ms);
  if (got instanceof Error) assert.fail(`run() rejected: ${got.message}`);
  return got;
}

/** The failures of a run as `stage code`, sorted. */
export const codes = (s: RunSummary): string[] =>
  s.failures.map((f) => `${f.stage} ${f.code}`).sort();

/** How a fault may be injected in a mode: a throw anywhere; in a worker also its death. */
export function hows(mode: "inline" | "workers"): ("throw" | "timer")[] {
  return mode === "inline" ? ["throw"] : ["throw", "timer"];
}

/** The failure code a fault injected `how` gives. */
export const codeOf = (how: string): string => how === "throw" ? "Error" : "E_WORKER";

/**
 * A memory backend whose write number `n` takes `delayMs`, creating `startedFile` as it begins: a
 * stage waiting for that file fails while that checkpoint is stored.
 */
export function slowWrite(startedFile: string, delayMs: number, n: number): StateBackend {
  const inner = memoryStateBackend();
  let writes = 0;
  return {
    getMany: (keys) => inner.getMany(keys),
    async setMany(entries) {
      if (++writes === n) {
        Deno.writeTextFileSync(startedFile, "x");
        await new Promise((r) => setTimeout(r, delayMs));
      }
      await inner.setMany(entries);
    },
  };
}
