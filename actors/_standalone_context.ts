// The context of a stage opened on its own, outside a pipeline's tasks (a dead-letter sink the
// pipeline opens itself, a stage driven by hand in a test): one instance, one partition.
import { KeyedState } from "./keyed_state.ts";
import { partitionOf } from "./partitioner.ts";
import type { StageContext } from "./stage.ts";

/**
 * A context for one stage instance outside a task: it emits nowhere, has one partition, and
 * stops when `signal` aborts.
 *
 * @param stage The stage name.
 * @param signal Aborted when the stage must stop.
 * @param deadLetter Where its dead letters go (default: nowhere).
 */
export function standaloneContext<T>(
  stage: string,
  signal: AbortSignal,
  deadLetter: StageContext<T>["deadLetter"] = () => {},
): StageContext<T> {
  return {
    stage,
    instance: 0,
    parallelism: 1,
    partitions: 1,
    watermark: -Infinity,
    signal,
    now: () => Date.now(),
    emit: () => {},
    emitTo: () => {},
    deadLetter,
    keyed: <V>() => new KeyedState<V>(1),
    partitionOf: (key: string) => partitionOf(key, 1),
  };
}
