// Driving a stage by hand, as the runtime would, for the "killed" conformance checks: the
// definition is imported from the stage reference, its config validated, and the instance opened
// with a hand-made context whose signal the test aborts (as the runtime does when it kills or
// fails a stage, without calling `close`).
import type { StageContext, StageDefinition, StageRef, StreamRecord } from "../actors/mod.ts";
import { standaloneContext } from "../actors/_standalone_context.ts";

/** A context for a stage driven by hand, and the means to kill it. */
export interface Hand {
  ctx: StageContext<never>;
  /** The signal of pulls. */
  pullSignal: AbortSignal;
  /** Records the stage dead-lettered. */
  dead: StreamRecord<unknown>[];
  /** Aborts the context's signal and any pull, as the runtime does when it kills the stage. */
  kill(): void;
}

/** A hand-made context for stage `stage`, instance 0 of 1. */
export function hand(stage: string): Hand {
  const abort = new AbortController();
  const pulls = new AbortController();
  const dead: StreamRecord<unknown>[] = [];
  const ctx = standaloneContext<never>(stage, abort.signal, (record) => void dead.push(record));
  return {
    ctx,
    pullSignal: pulls.signal,
    dead,
    kill() {
      pulls.abort();
      abort.abort();
    },
  };
}

/** Opens the instance a stage reference describes, as a worker would. */
export async function openStage(
  ref: Pick<StageRef, "module" | "export" | "config">,
  ctx: StageContext<never>,
): Promise<unknown> {
  const mod = await import(ref.module);
  const def = mod[ref.export] as StageDefinition;
  const parsed = def.config.safeParse(ref.config);
  if (!parsed.success) {
    throw new TypeError(`Cannot open stage: ${JSON.stringify(parsed.error.issues)}`);
  }
  return await def.open(parsed.data, ctx as never);
}
