/**
 * Stage definitions: the contract between user code and the runtime.
 *
 * A stage module exports one definition made by {@linkcode defineSource},
 * {@linkcode defineProcessor} or {@linkcode defineSink}. The runtime imports the
 * module by URL inside the stage's worker (or on the main thread in inline
 * mode), validates the config with the definition's zod schema and drives the
 * hooks.
 *
 * @module
 */
import type { StreamRecord } from "./record.ts";
import type { KeyedState } from "./keyed_state.ts";

/** Deno permissions a stage's worker runs with (`"none"` by default for processors). */
export type StagePermissions = "none" | "inherit" | {
  net?: boolean | string[];
  read?: boolean | string[];
  write?: boolean | string[];
  env?: boolean | string[];
  run?: boolean | string[];
  sys?: boolean | string[];
  ffi?: boolean | string[];
  import?: boolean | string[];
};

/** What every hook receives: who it is, and how to emit, dead-letter and keep state. */
export interface StageContext<O = unknown> {
  /** The stage's name in the pipeline (unique). */
  readonly stage: string;
  /** This instance's index, `0 ≤ instance < parallelism`. */
  readonly instance: number;
  /** How many instances the stage has right now. */
  readonly parallelism: number;
  /** The number of logical partitions keys hash into (fixed per pipeline). */
  readonly partitions: number;
  /** The current event-time watermark on this instance's inputs (ms; `-Infinity` before any). */
  readonly watermark: number;
  /** Aborted when the stage is asked to stop. */
  readonly signal: AbortSignal;
  /** Milliseconds since the epoch from the runtime's clock (injectable in tests). */
  now(): number;
  /** Sends a record downstream. */
  emit(record: StreamRecord<O>): void;
  /** Sends a record to a named side output (for example late events); dead-letters it when the side output is not wired. */
  emitTo(output: string, record: StreamRecord<unknown>): void;
  /** Sends a record to the stage's dead-letter sink with a reason; it is never silently dropped. */
  deadLetter(record: StreamRecord<unknown>, reason: string | Error): void;
  /**
   * Keyed state, partitioned by the record key's partition. The runtime snapshots it and moves it
   * with its partitions when the stage is rescaled, so stateful processors need no snapshot code.
   */
  keyed<V>(name?: string): KeyedState<V>;
  /** The partition a key hashes to. */
  partitionOf(key: string): number;
  /**
   * For a source: the `position` of the last batch whose records a stored checkpoint holds, when
   * that checkpoint is being restored: a restart of an instance above a stateful stage (the
   * checkpoint holds its place together with the state below it), or of one fused with a stateful
   * stage (parallelism 1; also under `restoreState`). A source that can seek starts right after
   * it, so the restored state and the input line up exactly; one that cannot starts where it
   * would (Kafka from its committed offsets). Undefined otherwise.
   */
  readonly resumeFrom?: unknown;
}

/** What a source's `pull` returns: records and an opaque position acked once they are all done. */
export interface SourceBatch<T> {
  /** The records read. May be empty (the runtime pulls again after a short pause). */
  records: StreamRecord<T>[];
  /** Opaque position handed back to `ack` once every record of this batch is done downstream. */
  position?: unknown;
  /** Event time the source vouches for after this batch (ms); defaults to max ts − out-of-orderness. */
  watermark?: number;
}

/** Options to a source's `pull`. */
export interface PullOptions {
  /** Most records to return. */
  max: number;
  /** Aborted when the pipeline stops. */
  signal: AbortSignal;
}

/** One running source instance: what a source definition's `open` returns. */
export interface SourceInstance<T> {
  /**
   * Reads the next records. Called only when the stage has credit downstream, so a source that
   * does not get called stops reading (pauses its consumer, stops reading its file). Returns
   * `null` at the end of a bounded input. Throw a `RetriableError` when its server is briefly away:
   * the runtime pulls again after a backoff; any other throw fails the instance.
   */
  pull(
    options: PullOptions,
    ctx: StageContext<T>,
  ): Promise<SourceBatch<T> | null> | SourceBatch<T> | null;
  /** Called, in pull order, with each batch's position once all its records are done everywhere. */
  ack?(position: unknown, ctx: StageContext<T>): void | Promise<void>;
  /**
   * Releases resources. Called once: at the end, and also after a failure or when the runtime
   * kills the instance (restart, forced stop); `ctx.signal` is aborted then, and the runtime waits
   * for it at most a second.
   */
  close?(ctx: StageContext<T>): void | Promise<void>;
}

/**
 * One running processor instance: what a processor definition's `open` returns. Records are
 * processed one by one so that a bad record can be isolated, retried and dead-lettered.
 */
export interface ProcessorInstance<I, O> {
  /**
   * Optional batch preparation (e.g. batched lookups) before `process` sees each record. A
   * {@linkcode RetriableError} (lookup store down) is retried with backoff for as long as it takes,
   * holding the batch and so the pipeline; any other throw restarts the instance.
   */
  beforeBatch?(records: StreamRecord<I>[], ctx: StageContext<O>): void | Promise<void>;
  /**
   * Handles one record: return a record, an array of records, or nothing (and/or call
   * `ctx.emit`). A throw marks the record failed: it is retried `maxRetries` times, then
   * dead-lettered. A {@linkcode RetriableError} is a transient fault instead: the record is
   * retried with backoff for as long as it takes, without counting against `maxRetries`.
   */
  process(
    record: StreamRecord<I>,
    ctx: StageContext<O>,
  ):
    | StreamRecord<O>
    | StreamRecord<O>[]
    | void
    | Promise<StreamRecord<O> | StreamRecord<O>[] | void>;
  /**
   * Event time moved forward on all inputs: fire what is complete. A
   * {@linkcode RetriableError} is retried with backoff and what the attempt emitted is dropped,
   * so throw it before changing state; any other throw restarts the instance.
   */
  onWatermark?(watermark: number, ctx: StageContext<O>): void | Promise<void>;
  /**
   * Processing-time tick, every `tickMs` of the stage options (for processing-time windows, rate
   * limits). Throws are handled as in `onWatermark`. Not called while `pipeline.scale()` rescales
   * this stage or one above it: ticks resume once it is done.
   */
  onTick?(now: number, ctx: StageContext<O>): void | Promise<void>;
  /** End of all inputs: emit what is still held. Throws are handled as in `onWatermark`. */
  flush?(ctx: StageContext<O>): void | Promise<void>;
  /** Extra state beyond `ctx.keyed()`, to carry across restarts. */
  snapshot?(ctx: StageContext<O>): unknown;
  /** Restores what `snapshot` returned. */
  restore?(state: unknown, ctx: StageContext<O>): void | Promise<void>;
  /**
   * Releases resources. Called once: at the end, and also after a failure or when the runtime
   * kills the instance (restart, forced stop); `ctx.signal` is aborted then, and the runtime waits
   * for it at most a second.
   */
  close?(ctx: StageContext<O>): void | Promise<void>;
}

/** One running sink instance: what a sink definition's `open` returns. */
export interface SinkInstance<T> {
  /**
   * Writes a batch and resolves only when it is durable; the records are acked upstream then.
   * Throw a {@linkcode RetriableError} for transient faults (server down): the batch is retried
   * with backoff and the pipeline backs up meanwhile. Any other throw is retried `maxRetries`
   * times, then records are written one by one and those that still fail are dead-lettered.
   */
  write(records: StreamRecord<T>[], ctx: StageContext<never>): void | Promise<void>;
  /**
   * End of input: write what is buffered. A {@linkcode RetriableError} is retried with backoff;
   * any other throw restarts the instance.
   */
  flush?(ctx: StageContext<never>): void | Promise<void>;
  /**
   * Releases resources. Called once: at the end, and also after a failure or when the runtime
   * kills the instance (restart, forced stop); `ctx.signal` is aborted then, and the runtime waits
   * for it at most a second.
   */
  close?(ctx: StageContext<never>): void | Promise<void>;
}

/**
 * What a config schema must offer: zod schemas (`z.object(...)`, zod 3 or 4) fit as they are.
 */
export interface ConfigSchema<C> {
  /**
   * Validates `input`; on failure, `error.issues` carries each problem's path and message. The
   * runtime parses a config once per instance, so it passes `{ jitless: true }` as `options`: zod 4
   * then skips compiling a fast path; zod 3 and other schemas ignore it.
   */
  safeParse(input: unknown, options?: object): ConfigParseResult<C>;
}

/** The result of {@linkcode ConfigSchema.safeParse}. */
export type ConfigParseResult<C> =
  | { success: true; data: C }
  | {
    success: false;
    error: { issues: readonly { path: readonly PropertyKey[]; message: string }[] };
  };

/** Common fields of every definition. */
export interface DefinitionBase<C> {
  /** The stage type's name, used in errors and as the default stage name. */
  readonly name: string;
  /** zod schema for the config; validated before anything starts and again in the worker. */
  readonly config: ConfigSchema<C>;
  /** Whether the stage holds state across records (stateful stages are never fused). */
  readonly stateful?: boolean;
  /** Deno permissions the stage needs in its worker (default `"none"`). */
  readonly permissions?: StagePermissions;
}

/** A source definition, made by {@linkcode defineSource}. */
export interface SourceDefinition<T = unknown, C = unknown> extends DefinitionBase<C> {
  /** Discriminator. */
  readonly kind: "source";
  /** Opens one instance (connections, files) with its validated config. */
  open(config: C, ctx: StageContext<T>): SourceInstance<T> | Promise<SourceInstance<T>>;
}

/** A processor definition, made by {@linkcode defineProcessor}. */
export interface ProcessorDefinition<I = unknown, O = unknown, C = unknown>
  extends DefinitionBase<C> {
  /** Discriminator. */
  readonly kind: "processor";
  /** Opens one instance with its validated config; per-instance state lives in its closure. */
  open(config: C, ctx: StageContext<O>): ProcessorInstance<I, O> | Promise<ProcessorInstance<I, O>>;
}

/** A sink definition, made by {@linkcode defineSink}. */
export interface SinkDefinition<T = unknown, C = unknown> extends DefinitionBase<C> {
  /** Discriminator. */
  readonly kind: "sink";
  /** Opens one instance (connections, files) with its validated config. */
  open(config: C, ctx: StageContext<never>): SinkInstance<T> | Promise<SinkInstance<T>>;
}

/** Any stage definition. */
export type StageDefinition =
  // deno-lint-ignore no-explicit-any
  | SourceDefinition<any, any>
  // deno-lint-ignore no-explicit-any
  | ProcessorDefinition<any, any, any>
  // deno-lint-ignore no-explicit-any
  | SinkDefinition<any, any>;

/**
 * Defines a source stage.
 *
 * @example Counting source
 * ```ts
 * import { defineSource } from "@sluice/sluice";
 * import { z } from "npm:zod@3.25.76";
 * import assert from "node:assert/strict";
 *
 * export const counter = defineSource({
 *   name: "counter",
 *   config: z.object({ to: z.number().int() }),
 *   open({ to }) {
 *     let next = 0;
 *     return {
 *       pull({ max }) {
 *         if (next >= to) return null;
 *         const records = [];
 *         while (next < to && records.length < max) records.push({ value: next++, ts: Date.now() });
 *         return { records };
 *       },
 *     };
 *   },
 * });
 * assert.equal(counter.kind, "source");
 * ```
 */
export function defineSource<T, C>(
  definition: Omit<SourceDefinition<T, C>, "kind">,
): SourceDefinition<T, C> {
  checkName(definition.name);
  return Object.freeze({ ...definition, kind: "source" as const });
}

/**
 * Defines a processor stage.
 *
 * @example Upper-casing processor
 * ```ts
 * import { defineProcessor } from "@sluice/sluice";
 * import { z } from "npm:zod@3.25.76";
 * import assert from "node:assert/strict";
 *
 * export const upper = defineProcessor({
 *   name: "upper",
 *   config: z.object({}),
 *   open: () => ({
 *     process: (r: { value: string; ts: number }) => ({ ...r, value: r.value.toUpperCase() }),
 *   }),
 * });
 * assert.equal(upper.kind, "processor");
 * ```
 */
export function defineProcessor<I, O, C>(
  definition: Omit<ProcessorDefinition<I, O, C>, "kind">,
): ProcessorDefinition<I, O, C> {
  checkName(definition.name);
  return Object.freeze({ ...definition, kind: "processor" as const });
}

/**
 * Defines a sink stage.
 *
 * @example Console sink
 * ```ts
 * import { defineSink } from "@sluice/sluice";
 * import { z } from "npm:zod@3.25.76";
 * import assert from "node:assert/strict";
 *
 * export const log = defineSink({
 *   name: "log",
 *   config: z.object({}),
 *   open: () => ({
 *     write(records: { value: unknown }[]) {
 *       for (const r of records) console.log(r.value);
 *     },
 *   }),
 * });
 * assert.equal(log.kind, "sink");
 * ```
 */
export function defineSink<T, C>(
  definition: Omit<SinkDefinition<T, C>, "kind">,
): SinkDefinition<T, C> {
  checkName(definition.name);
  return Object.freeze({ ...definition, kind: "sink" as const });
}

function checkName(name: unknown): void {
  if (typeof name !== "string" || !/^[A-Za-z][\w.-]*$/.test(name)) {
    throw new TypeError(`Cannot define stage: name ${JSON.stringify(name)} is not an identifier`);
  }
}
