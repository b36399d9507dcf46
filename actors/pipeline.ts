/**
 * The pipeline builder: source → processors → sinks, typed end to end.
 *
 * @module
 */
import type { StreamRecord } from "./record.ts";
import type { StageOptions, StageRef } from "./stage_ref.ts";
import { ConfigError } from "./errors.ts";
import { type DeadLetterSink, ndjsonDeadLetters } from "./dead_letter.ts";
import { compile, type Edge, loadStage, type Node } from "./_graph.ts";
import { parseConfig } from "./_config.ts";
import { standaloneContext } from "./_standalone_context.ts";
import { type RunSummary, Runtime } from "./_runtime.ts";
import type { StageCounters } from "./_protocol.ts";
import { keyByRef } from "./_key_by.ts";
import { checkOptions, pipelineOptionsSchema } from "./_options.ts";
import type { StateBackend } from "./state_backend.ts";
import { inMemoryState } from "./_memory_state.ts";

export type { RunSummary, StageCounters };

/** Options of a pipeline; every one has a default. */
export interface PipelineOptions {
  /** Name used in errors, metrics and the default dead-letter file. Default `"pipeline"`. */
  name?: string;
  /** `"workers"` (default): each task in its own Web Worker. `"inline"`: all on the main thread, same semantics. */
  mode?: "workers" | "inline";
  /** Logical partitions keys hash into. Default 64. */
  partitions?: number;
  /** Heartbeat period of workers; two missed beats mark a worker hung. Default 1000 ms. */
  heartbeatMs?: number;
  /** Time an instance may take to load and open its stages (in either mode), else it is replaced. Default 30 000 ms. */
  startTimeoutMs?: number;
  /** Bound on the graceful drain of `stop()`. Default 30 000 ms. */
  stopTimeoutMs?: number;
  /** Where dead letters go: a sink stage or a {@linkcode DeadLetterSink}. Default: NDJSON file `.sluice/dead-letters/<name>.ndjson`. */
  deadLetter?: DeadLetterSink | StageRef;
  /** Options applied to every stage unless the stage sets its own. */
  defaults?: StageOptions;
  /** Bounded out-of-orderness of event time at the sources: watermark = max ts − this. Default 0. */
  outOfOrdernessMs?: number;
  /** Whether SIGINT/SIGTERM trigger a graceful `stop()` while running. Default true. */
  signals?: boolean;
  /**
   * Where stateful stages checkpoint their keyed state (any `Store` of `stores/` fits: Deno KV,
   * Redis, MongoDB). Input of a stateful stage is acked only once a checkpoint holding its effects
   * is stored, so a restarted instance resumes from it and its unacked input is replayed.
   * Default: the main thread's memory (survives restarts and rescaling, not the process).
   */
  state?: StateBackend;
  /** Period of checkpoints of stateful stages, in ms (they also ask for one under load). Default 1000. */
  checkpointMs?: number;
  /** Restore stateful stages from `state` at start: resume a pipeline of the same name. Default false. */
  restoreState?: boolean;
}

/** Per-stage counters as reported by the running instances. */
export type PipelineCounters = Record<string, { instances: StageCounters[]; restarts: number }>;

/**
 * A stream of records of type `T` being built; returned by `from` and `via`.
 */
export class Flow<T> {
  readonly #pipeline: Pipeline;
  readonly #node: number;
  readonly #keyed: boolean;
  readonly #side: string;

  /** @internal Made by {@linkcode Pipeline.from}. */
  constructor(pipeline: Pipeline, node: number, keyed = false, side = "") {
    this.#pipeline = pipeline;
    this.#node = node;
    this.#keyed = keyed;
    this.#side = side;
  }

  /** Adds a processor fed by this flow. */
  via<O>(processor: StageRef<T, O>, options: StageOptions = {}): Flow<O> {
    const id = this.#pipeline._add(processor, options, "processor");
    this.#pipeline._edge({ from: this.#node, to: id, keyed: this.#keyed, side: this.#side });
    return new Flow<O>(this.#pipeline, id);
  }

  /**
   * Partitions the next edge by key: records with the same key reach the same instance.
   * With `fn`, the key is computed from each record first (an inline function that closes over
   * nothing); without, the record's own `key` is used.
   */
  keyBy(fn?: (value: T, record: StreamRecord<T>) => string, options: StageOptions = {}): Flow<T> {
    if (!fn) return new Flow<T>(this.#pipeline, this.#node, true, this.#side);
    return this.via(keyByRef<T>(fn), options).#asKeyed();
  }

  #asKeyed(): Flow<T> {
    return new Flow<T>(this.#pipeline, this.#node, true, this.#side);
  }

  /** The records the last stage sends to side output `name` (e.g. `"late"` from windows). */
  sideOutput<S = unknown>(name: string): Flow<S> {
    return new Flow<S>(this.#pipeline, this.#node, false, name);
  }

  /** Adds a sink fed by this flow; call `to` several times on one flow to fan out. */
  to(sink: StageRef<T, unknown>, options: StageOptions = {}): Pipeline {
    const id = this.#pipeline._add(sink, options, "sink");
    this.#pipeline._edge({ from: this.#node, to: id, keyed: this.#keyed, side: this.#side });
    return this.#pipeline;
  }
}

/**
 * A pipeline: build it with `from(...).via(...).to(...)`, then `run()`.
 *
 * Shutdown order on `stop()` (or SIGINT/SIGTERM): sources stop pulling, records in flight are
 * processed and acked, each stage flushes and closes in topological order, source positions of
 * everything acked are committed; after `stopTimeoutMs` what is left is terminated.
 *
 * @example Generate, double, collect
 * ```ts
 * import { collect, fromArray, map, pipeline } from "@sluice/sluice";
 * import assert from "node:assert/strict";
 *
 * const out = collect<number>();
 * await pipeline({ mode: "inline" })
 *   .from(fromArray([1, 2, 3].map((v) => ({ value: v, ts: 0 }))))
 *   .via(map((v: number) => v * 2))
 *   .to(out.sink)
 *   .run();
 * assert.deepEqual((await out.values()).sort(), [2, 4, 6]);
 * ```
 */
export class Pipeline implements AsyncDisposable {
  readonly #options: PipelineOptions;
  readonly #nodes: Node[] = [];
  readonly #edges: Edge[] = [];
  #runtime: Runtime | undefined;
  /** The run, from the moment `run()` is called (the runtime exists only once it has compiled). */
  #running: Promise<RunSummary> | undefined;
  /** `stop()` came before the runtime existed: it stops as soon as it starts. */
  #stopAsked = false;
  /** Resolved once the runtime exists (a scale() waits for it while the plan compiles). */
  readonly #started = Promise.withResolvers<void>();

  /**
   * Creates a pipeline; {@linkcode pipeline} is the shorter way.
   *
   * @param options Pipeline options.
   */
  constructor(options: PipelineOptions = {}) {
    this.#options = options;
  }

  /** The pipeline's name. */
  get name(): string {
    return this.#options.name ?? "pipeline";
  }

  /** Adds a source. */
  from<T>(source: StageRef<never, T>, options: StageOptions = {}): Flow<T> {
    return new Flow<T>(this, this._add(source, options, "source"));
  }

  /** @internal */
  _add(ref: StageRef, options: StageOptions, expected: StageRef["kind"]): number {
    if (this.#running) throw new TypeError("Cannot change pipeline: it is already running");
    if (ref?.kind !== expected) {
      throw new TypeError(
        `Cannot add stage: expected a ${expected} reference, got ${ref?.kind ?? typeof ref}`,
      );
    }
    // Unnamed stages are named after their definition when the pipeline is compiled.
    const name = options.name ?? ref.options?.name ?? "";
    if (name && this.#nodes.some((n) => n.name === name)) {
      throw new ConfigError(`Cannot add stage: name "${name}" is already taken`);
    }
    const id = this.#nodes.length;
    this.#nodes.push({ id, name, ref, options });
    return id;
  }

  /** @internal */
  _edge(edge: Edge): void {
    this.#edges.push(edge);
  }

  /** Stage names in the order they were added. */
  get stages(): string[] {
    return this.#nodes.map((n) => n.name);
  }

  /**
   * Runs until every source is exhausted (or `stop()`), then resolves with per-stage counters.
   * Every config is validated before anything starts.
   *
   * @throws {ConfigError} On a config mistake, naming the stage and zod path.
   * @throws {PipelineError} When failures escalate past a stage's restart intensity.
   */
  run(): Promise<RunSummary> {
    if (this.#running) return Promise.reject(new TypeError("Cannot run pipeline: it already ran"));
    this.#running = this.#run();
    return this.#running;
  }

  async #run(): Promise<RunSummary> {
    const o = this.#options;
    checkOptions(pipelineOptionsSchema, o, `Cannot build pipeline "${this.name}"`);
    if (this.#nodes.length === 0) {
      throw new ConfigError(`Cannot run pipeline "${this.name}": it has no stages (add from())`);
    }
    const partitions = o.partitions ?? 64;
    const plan = await compile(this.#nodes, this.#edges, o.defaults ?? {}, partitions);
    const fallback = await openDeadLetters(o.deadLetter, this.name);
    const perStage = new Map<string, DeadLetterSink>();
    for (const node of this.#nodes) {
      const target = node.options.deadLetter ?? node.ref.options?.deadLetter ??
        o.defaults?.deadLetter;
      if (target) perStage.set(node.name, await openDeadLetters(target, this.name));
    }
    this.#runtime = new Runtime(plan, {
      name: this.name,
      mode: o.mode ?? "workers",
      partitions,
      heartbeatMs: o.heartbeatMs ?? 1000,
      startTimeoutMs: o.startTimeoutMs ?? 30_000,
      stopTimeoutMs: o.stopTimeoutMs ?? 30_000,
      deadLetters: (stage) => perStage.get(stage) ?? fallback,
      outOfOrdernessMs: o.outOfOrdernessMs ?? 0,
      signals: o.signals ?? true,
      state: o.state ?? inMemoryState(false),
      checkpointMs: o.checkpointMs ?? 1000,
      restoreState: o.restoreState ?? false,
    });
    this.#started.resolve();
    try {
      const done = this.#runtime.start();
      if (this.#stopAsked) void this.#runtime.stop();
      return await done;
    } finally {
      for (const sink of [fallback, ...perStage.values()]) await sink.close?.();
    }
  }

  /** Stops gracefully: sources stop, in-flight records drain, stages close. */
  async stop(): Promise<void> {
    if (this.#runtime) return await this.#runtime.stop();
    if (!this.#running) return;
    // Still compiling: the run stops as soon as its runtime exists; this waits for its end.
    this.#stopAsked = true;
    await this.#running.then(() => {}, () => {});
  }

  /** Changes a stage's parallelism at run time; keyed state moves with its partitions. */
  async scale(stage: string, parallelism: number): Promise<void> {
    // Called right after run(), while the plan compiles: the rescale waits for the runtime.
    if (!this.#runtime && this.#running) {
      await Promise.race([this.#started.promise, this.#running.catch(() => {})]);
    }
    if (!this.#runtime) throw new TypeError("Cannot scale: the pipeline is not running");
    await this.#runtime.scale(stage, parallelism);
  }

  /** Counters per stage and instance, as last reported (heartbeat period). */
  counters(): PipelineCounters {
    return this.#runtime?.counters() ?? {};
  }

  /** Stops the pipeline if it runs. */
  async [Symbol.asyncDispose](): Promise<void> {
    await this.stop();
  }
}

/**
 * Creates a pipeline.
 *
 * @param options Pipeline options (all optional).
 * @returns The builder.
 *
 * @example
 * ```ts
 * import { pipeline } from "@sluice/sluice";
 * import assert from "node:assert/strict";
 *
 * assert.equal(pipeline({ name: "orders" }).name, "orders");
 * ```
 */
export function pipeline(options: PipelineOptions = {}): Pipeline {
  return new Pipeline(options);
}

async function openDeadLetters(
  target: DeadLetterSink | StageRef | undefined,
  name: string,
): Promise<DeadLetterSink> {
  if (!target) return ndjsonDeadLetters(`.sluice/dead-letters/${name}.ndjson`);
  if (!("kind" in target)) return target;
  const def = await loadStage(target, "dead-letter");
  if (def.kind !== "sink") throw new ConfigError("Cannot use dead-letter stage: it is not a sink");
  const config = parseConfig(def, "dead-letter", target.config);
  const abort = new AbortController();
  const ctx = standaloneContext<never>("dead-letter", abort.signal);
  const sink = await def.open(config, ctx);
  return {
    write: (entries) =>
      sink.write(entries.map((e) => ({ value: e, ts: e.at, key: e.record.key })), ctx),
    close: async () => {
      await sink.flush?.(ctx);
      await sink.close?.(ctx);
      abort.abort();
    },
  };
}
