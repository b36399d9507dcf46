/**
 * References to stage modules: what a pipeline is built from.
 *
 * @module
 */
import type { StagePermissions } from "./stage.ts";
import type { DeadLetterSink } from "./dead_letter.ts";

/** Supervision strategy of a stage's supervisor. */
export type Strategy = "one_for_one" | "rest_for_one" | "one_for_all";

/** Per-stage options; every one has a default. */
export interface StageOptions {
  /** Stage name, unique in the pipeline. Default: the definition's name (suffixed when taken). */
  name?: string;
  /** Number of instances. Default 1. */
  parallelism?: number;
  /** Mailbox capacity in batches per input channel. Default 8. */
  capacity?: number;
  /** Most records per batch. Default 512. */
  batchSize?: number;
  /** How long a partial batch may wait for more records, in ms. Default 5. */
  lingerMs?: number;
  /**
   * How failures of this stage's instances are handled. Default `"one_for_one"`. Whatever the
   * strategy, the stateful instances below a failed one restart from their last checkpoint too.
   */
  strategy?: Strategy;
  /** Restarts allowed within `withinMs` before the failure escalates. Default 5. */
  maxRestarts?: number;
  /** Window for `maxRestarts`, in ms. Default 10 000. */
  withinMs?: number;
  /** Times a failing record is retried before it is dead-lettered. Default 2. */
  maxRetries?: number;
  /** Set `false` to keep this stage in its own worker instead of fusing it with neighbours. */
  fuse?: boolean;
  /** Deno permissions of the stage's worker; overrides the definition's. */
  permissions?: StagePermissions;
  /** Period of `onTick` for processors that have it, in ms. Default 100. */
  tickMs?: number;
  /**
   * An input silent this long (or still to connect, its instance above restarting) no longer holds
   * back the watermark, in ms. Default 10 000.
   */
  idleTimeoutMs?: number;
  /** Where this stage's dead letters go (a sink stage or a sink object). Default: the pipeline's. */
  deadLetter?: DeadLetterSink | StageRef;
  /**
   * Make this processor the source of event time (like Flink's `assignTimestampsAndWatermarks`):
   * downstream watermarks become the highest `ts` it emitted minus `outOfOrdernessMs`, instead of
   * the upstream ones (the end of input still passes). For stages that set `ts` from the data,
   * such as decoders after a file or socket source, whose chunks carry no event time.
   */
  watermarks?: { outOfOrdernessMs: number };
  /**
   * Watermark alignment across this stage's inputs (like Flink's, on the receiving side): an
   * input whose watermark runs more than `maxDriftMs` ahead of the slowest active input is held
   * back, its batches left unacked in the mailbox so its sender runs out of credit and stops,
   * until the others catch up. Bounds the open windows (and checkpoints) of a stage fed by
   * parallel sources that read at different speeds, such as a file striped over N readers. An
   * input silent for `idleTimeoutMs`, or ended, holds nothing back. Use it where the inputs come
   * from independent upstream tasks: held-back credit stalls a task's every output, so inputs
   * that share an upstream (a fan-out) would wait for `idleTimeoutMs`. A rescale of the stage
   * (`pipeline.scale()`) lets held-back input go while it drains the stage.
   */
  align?: { maxDriftMs: number };
}

/**
 * A stage in a pipeline: the URL of the module holding its definition, the export name and the
 * config. Build one with {@linkcode stage}, or with the helpers in `processors/` and
 * `connectors/`. `I` and `O` are the record value types in and out.
 */
export interface StageRef<I = never, O = unknown> {
  /** What the definition is. */
  readonly kind: "source" | "processor" | "sink";
  /** URL of the module that exports the definition. */
  readonly module: string;
  /** Name of the export holding the definition. */
  readonly export: string;
  /** The raw config, validated with the definition's zod schema before anything starts. */
  readonly config: unknown;
  /** Default options for this stage (the pipeline's per-stage options override them). */
  readonly options?: StageOptions;
  /**
   * Phantom field carrying the record value types; never set. `in` is a parameter type so that a
   * stage taking `unknown` fits any flow (contravariance), while `out` flows on to the next stage.
   */
  readonly types?: { in: (value: I) => void; out: O };
}

/**
 * References a user stage module by URL.
 *
 * @param module URL of the module (usually `new URL("./my_stage.ts", import.meta.url)`).
 * @param config The stage's config.
 * @param options `kind` (default `"processor"`), `export` (default `"default"`) and stage options.
 * @returns A reference to use in a pipeline.
 *
 * @example
 * ```ts
 * import { stage } from "@sluice/sluice";
 * import assert from "node:assert/strict";
 *
 * const ref = stage(new URL("./my_stage.ts", import.meta.url), { factor: 2 });
 * assert.equal(ref.export, "default");
 * ```
 */
export function stage<I = unknown, O = unknown>(
  module: URL | string,
  config: unknown,
  options: StageOptions & { kind?: StageRef["kind"]; export?: string } = {},
): StageRef<I, O> {
  const { kind = "processor", export: exportName = "default", ...stageOptions } = options;
  return { kind, module: String(module), export: exportName, config, options: stageOptions };
}
