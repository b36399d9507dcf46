// The paced test source of fixtures/runtime_stages.ts (events `{ id, n: id % 7 }` keyed `k<id %
// keys>`) and the per-key sums a keyed sum over it must end with.
import assert from "node:assert/strict";
import {
  memoryStateBackend,
  type Pipeline,
  pipeline,
  type PipelineOptions,
  stage,
} from "../../mod.ts";

/** What the paced source makes. */
export type Ev = { id: number; n: number };
/** What the keyed sums emit. */
export type Sum = { key: string; sum: number };

/** The fixture module of the runtime tests. */
export const runtimeFixtures = new URL("./fixtures/runtime_stages.ts", import.meta.url);

/** Sum of `id % 7` per key `k<id % keys>` over ids 0..count-1. */
export function expectedSums(count: number, keys: number): Record<string, number> {
  const sums: Record<string, number> = {};
  for (let i = 0; i < count; i++) sums[`k${i % keys}`] = (sums[`k${i % keys}`] ?? 0) + i % 7;
  return sums;
}

/** The paced source: `count` events over `keys` keys, `perPull` a pull, `delayMs` between pulls. */
export function pacedSource(count: number, perPull: number, delayMs = 0, keys = 20) {
  return stage<never, Ev>(runtimeFixtures, { count, keys, perPull, delayMs }, {
    kind: "source",
    export: "pacedSource",
  });
}

/** The per-key sums a keyed sum emitted, each key once (asserted). */
export async function sumsOf(out: { values(): Promise<Sum[]> }): Promise<Record<string, number>> {
  const got: Record<string, number> = {};
  for (const v of await out.values()) {
    assert.ok(!(v.key in got), `key ${v.key} emitted twice (${got[v.key]} and ${v.sum})`);
    got[v.key] = v.sum;
  }
  return got;
}

/** A pipeline for fault tests: no signal handlers, and a stop forced after 3 s. */
export function faultPipeline(
  mode: "inline" | "workers",
  extra: PipelineOptions = {},
): Pipeline {
  return pipeline({ mode, signals: false, stopTimeoutMs: 3000, ...extra });
}

/** A fresh directory with the trigger and marker file names of a fault, and access to it. */
export async function faultFiles(prefix: string) {
  const dir = await Deno.makeTempDir({ prefix });
  return {
    dir,
    trigger: `${dir}/trigger`,
    marker: `${dir}/marker`,
    perms: { read: [dir], write: [dir] },
  };
}

/**
 * A workers pipeline with its state in memory whose checkpoints come only when a stateful stage
 * asks for one (the timer would wait a minute): for the tests of credit, retention and stalls.
 */
export function askedCheckpoints(
  defaults: { batchSize: number; capacity: number },
): ReturnType<typeof pipeline> {
  return pipeline({
    mode: "workers",
    signals: false,
    state: memoryStateBackend(),
    checkpointMs: 60_000,
    defaults,
  });
}
