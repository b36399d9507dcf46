// The paced test source of fixtures/runtime_stages.ts (events `{ id, n: id % 7 }` keyed `k<id %
// keys>`) and the per-key sums a keyed sum over it must end with.
import { memoryStateBackend, pipeline, stage } from "../../mod.ts";

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

/** The paced source: `count` events over 20 keys, `perPull` a pull, `delayMs` between pulls. */
export function pacedSource(count: number, perPull: number, delayMs = 0) {
  return stage<never, Ev>(runtimeFixtures, { count, keys: 20, perPull, delayMs }, {
    kind: "source",
    export: "pacedSource",
  });
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
