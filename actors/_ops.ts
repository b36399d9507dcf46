// Stage instances inside a task: each wraps a definition's instance with its context, counters,
// per-record retries and dead-lettering. Ops form a chain (operator fusion); the last one hands
// records to the task's outputs.
import { KeyedState } from "./keyed_state.ts";
import { partitionOf } from "./partitioner.ts";
import type { StreamRecord } from "./record.ts";
import type { ProcessorInstance, SinkInstance, StageContext } from "./stage.ts";
import { type ErrorInfo, toErrorInfo } from "./errors.ts";
import {
  type DeadLetter,
  LATENCY_BUCKETS,
  type StageCounters,
  type StageSpec,
  type StateSnapshot,
} from "./_protocol.ts";
import { Token } from "./_token.ts";
import { sleep } from "./_sleep.ts";

/** A failure in a stage hook other than `process` (those are retried and dead-lettered). */
export class HookFailure extends Error {
  constructor(readonly stage: string, override readonly cause: unknown) {
    super(String((cause as Error)?.message ?? cause));
  }
}

/** Runs a hook, attributing any throw to its stage. */
export async function guard<T>(stage: string, fn: () => T | Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (error) {
    if (error instanceof HookFailure) throw error;
    throw new HookFailure(stage, error);
  }
}

/**
 * A settled promise that watermark paths with nothing to wait for return: their caller skips its
 * `await` (a microtask per batch and stage) when it gets this one.
 */
export const SETTLED: Promise<void> = Promise.resolve();

/** Where an op sends its output. */
export interface Downstream {
  run(records: StreamRecord<unknown>[], token: Token): Promise<void>;
  /** Resolves once what was handed on has room below (credit on the task's outputs). */
  ready(): Promise<void>;
  watermark(wm: number): Promise<void>;
  tick(now: number): Promise<void>;
  flush(): Promise<void>;
}

/** What ops need from their task. */
export interface TaskServices {
  readonly instance: number;
  readonly parallelism: number;
  readonly partitions: number;
  /** Records a batch holds on the task's channels. */
  readonly batchSize: number;
  readonly signal: AbortSignal;
  watermark(): number;
  deadLetter(entries: DeadLetter[], token: Token): void;
  side(name: string, records: StreamRecord<unknown>[], token: Token): boolean;
  /** Sends a heartbeat now if one is due (called from long-running batches). */
  beat(): void;
  /**
   * A token for records a hook emits outside any input batch (`onWatermark`, `onTick`, `flush`:
   * fired windows). Checkpoints wait until such records are acked downstream.
   */
  hookToken(): Token;
}

/** Fresh zeroed counters. */
export function newCounters(): StageCounters {
  return {
    in: 0,
    out: 0,
    failed: 0,
    deadLettered: 0,
    mailbox: 0,
    credits: 0,
    batches: 0,
    latencyMs: 0,
    latency: LATENCY_BUCKETS.map(() => 0),
  };
}

function observe(counters: StageCounters, ms: number): void {
  counters.batches++;
  counters.latencyMs += ms;
  let i = 0;
  while (ms > LATENCY_BUCKETS[i]!) i++;
  counters.latency[i]!++;
}

/**
 * Why a stage's output is not a record (`{ value, ts, key?, headers? }`), or undefined when it is
 * one. The sink behind, a keyed edge and watermarks all rely on these fields.
 */
export function notARecord(r: unknown): string | undefined {
  if (typeof r !== "object" || r === null || Array.isArray(r)) {
    return `${r === null ? "null" : Array.isArray(r) ? "an array" : typeof r}, not a record ` +
      `({ value, ts, key? })`;
  }
  const record = r as Partial<StreamRecord<unknown>>;
  if (!("value" in record)) return "a record without value";
  // A number, though maybe not finite: stages on event time dead-letter such a record, those on
  // processing time take it.
  if (typeof record.ts !== "number") return `a record whose ts is ${what(record.ts)}, not a number`;
  if (record.key !== undefined && typeof record.key !== "string") {
    return `a record whose key is a ${typeof record.key}, not a string`;
  }
  if (
    record.headers !== undefined && (typeof record.headers !== "object" || record.headers === null)
  ) return `a record whose headers are ${record.headers === null ? "null" : typeof record.headers}`;
  return undefined;
}

/**
 * A hook broke its contract (a pull() that returned no batch, an open() that returned nothing):
 * the stage's code is at fault, so no restart can cure it and the run fails at once.
 */
export function contractError(message: string): TypeError {
  return Object.assign(new TypeError(message), { code: "E_CONTRACT" });
}

/** What a value is, in a few words, for a message about a hook's result. */
export function what(x: unknown): string {
  if (x === null) return "null";
  if (Array.isArray(x)) return "an array";
  if (typeof x === "object") return "an object";
  if (x === undefined) return "undefined";
  return typeof x === "string" ? "a string" : `${typeof x} ${String(x)}`;
}

/**
 * The usual case of a record, cheap enough for every one: see {@linkcode notARecord}. An array has
 * no numeric `ts`; `value` is looked for only when it reads as undefined.
 */
export function looksLikeRecord(r: StreamRecord<unknown>): boolean {
  return typeof r === "object" && r !== null && typeof r.ts === "number" &&
    (r.key === undefined || typeof r.key === "string") &&
    (r.value !== undefined || "value" in r) &&
    (r.headers === undefined || (typeof r.headers === "object" && r.headers !== null));
}

/** The index of the first of `records` from `from` on that is not a record, or -1. */
function firstNonRecord(records: unknown[], from = 0): number {
  for (let i = from; i < records.length; i++) {
    const r = records[i] as StreamRecord<unknown>;
    if (!looksLikeRecord(r) && notARecord(r) !== undefined) return i;
  }
  return -1;
}

/** Throws, naming the hook, when a record sent to a side output from `from` on is not one. */
function checkSide(side: [string, unknown][], from: number, hook: string): void {
  for (let i = from; i < side.length; i++) {
    const [name, r] = side[i]!;
    const problem = looksLikeRecord(r as StreamRecord<unknown>) ? undefined : notARecord(r);
    if (problem !== undefined) {
      throw new TypeError(`Cannot pass on output: ${hook} gave side output "${name}" ${problem}`);
    }
  }
}

/** Throws, naming the hook, when any of `out` from `from` on is not a record. */
function checkOutput(out: unknown[], from: number, hook: string): void {
  const at = firstNonRecord(out, from);
  if (at >= 0) {
    throw new TypeError(`Cannot pass on output: ${hook} gave ${notARecord(out[at])}`);
  }
}

function isThenable(x: unknown): x is PromiseLike<unknown> {
  return typeof (x as { then?: unknown } | null)?.then === "function";
}

/** The context object a stage's hooks see, with the buffers the op drains. */
export class Context implements StageContext<unknown> {
  readonly stage: string;
  readonly #services: TaskServices;
  readonly keyedStates = new Map<string, KeyedState<unknown>>();
  /** Records emitted by the hook now running. */
  out: StreamRecord<unknown>[] = [];
  /** Side-output and dead-letter requests from the hook now running. */
  side: [string, StreamRecord<unknown>][] = [];
  dead: [StreamRecord<unknown>, ErrorInfo][] = [];
  /**
   * The watermark this stage received last: in a fused chain a stage behind one that generates
   * watermarks sees those, not the task's input watermark. Undefined until one arrives.
   */
  received: number | undefined;
  /** See {@linkcode StageContext.resumeFrom}. */
  resumeFrom: unknown;

  constructor(stage: string, services: TaskServices) {
    this.stage = stage;
    this.#services = services;
  }
  get instance(): number {
    return this.#services.instance;
  }
  get parallelism(): number {
    return this.#services.parallelism;
  }
  get partitions(): number {
    return this.#services.partitions;
  }
  get watermark(): number {
    return this.received ?? this.#services.watermark();
  }
  get signal(): AbortSignal {
    return this.#services.signal;
  }
  now(): number {
    return Date.now();
  }
  emit(record: StreamRecord<unknown>): void {
    this.out.push(record);
  }
  emitTo(output: string, record: StreamRecord<unknown>): void {
    this.side.push([output, record]);
  }
  deadLetter(record: StreamRecord<unknown>, reason: string | Error): void {
    this.dead.push([record, toErrorInfo(typeof reason === "string" ? new Error(reason) : reason)]);
  }
  keyed<V>(name = "default"): KeyedState<V> {
    let state = this.keyedStates.get(name);
    if (!state) {
      state = new KeyedState<unknown>(this.#services.partitions);
      this.keyedStates.set(name, state);
    }
    return state as KeyedState<V>;
  }
  partitionOf(key: string): number {
    return partitionOf(key, this.#services.partitions);
  }
}

/** Base of processor and sink ops: counters, context, dead letters and side outputs. */
abstract class Op implements Downstream {
  readonly spec: StageSpec;
  readonly ctx: Context;
  readonly counters = newCounters();
  protected readonly services: TaskServices;

  constructor(spec: StageSpec, services: TaskServices, ctx: Context) {
    this.spec = spec;
    this.services = services;
    this.ctx = ctx;
  }

  abstract run(records: StreamRecord<unknown>[], token: Token): Promise<void>;
  abstract ready(): Promise<void>;
  abstract watermark(wm: number): Promise<void>;
  abstract tick(now: number): Promise<void>;
  abstract flush(): Promise<void>;
  abstract close(): Promise<void>;

  /**
   * Waits before the retry of a failed attempt. Once the stage is stopped it throws `error`
   * instead: the batch stays unacked, to be replayed to the next incarnation.
   */
  protected async pause(attempt: number, error: unknown): Promise<void> {
    const signal = this.services.signal;
    if (!signal.aborted) await backoff(attempt, signal);
    if (signal.aborted) throw new HookFailure(this.spec.stage, error);
  }

  /**
   * Runs a hook other than `process` and `write`. A `RetriableError` (a server briefly away) is
   * retried with backoff for as long as it lasts, or until the stage is stopped, and what the failed
   * attempt emitted is dropped; any other throw fails the instance.
   */
  protected async retrying<T>(call: () => T | Promise<T>): Promise<T> {
    for (let attempt = 1;; attempt++) {
      try {
        return await call();
      } catch (error) {
        if (error instanceof HookFailure) throw error;
        if (!isRetriable(error)) throw new HookFailure(this.spec.stage, error);
        this.ctx.out.length = 0;
        this.ctx.side = [];
        this.ctx.dead = [];
        this.counters.failed++;
        await this.pause(attempt, error);
      }
    }
  }

  /** Moves side outputs and dead letters requested by a hook to the task, tied to `token`. */
  protected settle(token: Token, failed?: [StreamRecord<unknown>, ErrorInfo, number][]): void {
    if (!failed?.length && this.ctx.dead.length === 0 && this.ctx.side.length === 0) return;
    failed ??= [];
    const dead: DeadLetter[] = failed.map(([record, error, attempts]) =>
      this.#entry(record, error, attempts)
    );
    for (const [record, error] of this.ctx.dead) dead.push(this.#entry(record, error, 1));
    this.ctx.dead = [];
    const bySide = new Map<string, StreamRecord<unknown>[]>();
    for (const [name, record] of this.ctx.side) {
      const list = bySide.get(name) ?? [];
      list.push(record);
      bySide.set(name, list);
    }
    this.ctx.side = [];
    for (const [name, records] of bySide) {
      if (!this.services.side(name, records, token)) {
        const error = { code: "E_SIDE_OUTPUT", message: `side output "${name}" is not wired` };
        for (const record of records) dead.push(this.#entry(record, error, 1));
      }
    }
    if (dead.length > 0) {
      this.counters.deadLettered += dead.length;
      this.services.deadLetter(dead, token);
    }
  }

  #entry(record: StreamRecord<unknown>, error: ErrorInfo, attempts: number): DeadLetter {
    return {
      record,
      error,
      stage: this.spec.stage,
      instance: this.services.instance,
      attempts,
      at: Date.now(),
    };
  }

  /**
   * Keyed and extra state: of the given partitions, of all (null), or of those touched since the
   * last checkpoint ("dirty").
   */
  snapshot(partitions: number[] | null | "dirty", drop: boolean): StateSnapshot {
    const keyed: StateSnapshot["keyed"] = {};
    for (const [name, state] of this.ctx.keyedStates) {
      const wanted = partitions === "dirty" ? state.takeDirty() : partitions ?? undefined;
      keyed[name] = state.snapshot(wanted);
      if (drop && Array.isArray(partitions)) state.drop(partitions);
    }
    // The end of input is no time to resume at: a later run (`restoreState`) has input of its own.
    const wm = this.ctx.received;
    return { keyed, extra: this.extraSnapshot(), watermark: Number.isFinite(wm) ? wm : undefined };
  }

  /** The partitions a snapshot took, per state name, are dirty again (its checkpoint was aborted). */
  redirty(partitions: Record<string, number[]>): void {
    for (const [name, list] of Object.entries(partitions)) {
      this.ctx.keyedStates.get(name)?.markDirty(list);
    }
  }

  protected extraSnapshot(): unknown {
    return undefined;
  }

  /**
   * Adds state moved here from another instance. Restored from its checkpoint, the stage resumes
   * at the watermark it had: what was late before the restart is late again.
   */
  async restore(snapshot: StateSnapshot): Promise<void> {
    for (const [name, entries] of Object.entries(snapshot.keyed)) {
      this.ctx.keyed(name).restore(entries);
    }
    if (snapshot.watermark !== undefined) this.ctx.received = snapshot.watermark;
    await this.restoreExtra(snapshot.extra);
  }

  protected async restoreExtra(_extra: unknown): Promise<void> {}
}

/** Why {@linkcode processSync} stopped. */
const enum Stop {
  /** At the end of the batch. */
  End,
  /** After a record whose output filled the chunk to hand on. */
  Full,
  /** At a record whose process() returned a promise (`pending`). */
  Async,
  /** At a record whose process() threw `pending`, or gave output that is not a record. */
  Threw,
}

/**
 * Where {@linkcode processSync} stopped: at `Async` and `Threw` also the lengths of the output,
 * side and dead-letter buffers before the record, to which a failed attempt goes back.
 */
interface FastState {
  stop: Stop;
  pending: unknown;
  sides: number;
  deads: number;
  outs: number;
}

/**
 * Appends what process() gave for one record (returned, and emitted through `ctx`) to `out`, whose
 * length was `outs` before it. Output that is not a record throws here, failing its input record
 * at the stage that made it (also the input passed on as it is: process() may have changed it).
 */
function collect(
  ctx: Context,
  out: StreamRecord<unknown>[],
  outs: number,
  sides: number,
  result: unknown,
): void {
  if (ctx.out.length > 0) {
    for (const r of ctx.out) out.push(r);
    ctx.out.length = 0;
  }
  if (result !== undefined && result !== null) {
    if (Array.isArray(result)) {
      // `null` or `undefined` in a returned array is nothing, as a returned null is.
      for (const r of result) if (r !== undefined && r !== null) out.push(r);
    } else out.push(result as StreamRecord<unknown>);
  }
  for (let k = outs; k < out.length; k++) {
    if (!looksLikeRecord(out[k]!)) checkOutput(out, k, "process()");
  }
  if (ctx.side.length > sides) checkSide(ctx.side, sides, "process()");
}

/**
 * The usual case of a batch, in a loop with no await that the JIT compiles early: runs
 * process() on `records` from `from` on, appending the output to `out`, until the end, a record
 * whose output fills `out` to `chunk`, or a record that needs {@linkcode ProcessorOp}'s slow path
 * (a promise, a throw). Returns the index of the first record not done; `fast` says why.
 */
function processSync(
  hooks: ProcessorInstance<unknown, unknown>,
  ctx: Context,
  records: StreamRecord<unknown>[],
  from: number,
  out: StreamRecord<unknown>[],
  chunk: number,
  beat: () => void,
  fast: FastState,
): number {
  const n = records.length;
  for (let i = from; i < n; i++) {
    // A long batch still beats: a slow but live stage is not mistaken for a hung one.
    if ((i & 255) === 255) beat();
    const sides = ctx.side.length, deads = ctx.dead.length, outs = out.length;
    try {
      const result = hooks.process(records[i]!, ctx);
      // The usual cases first: a record returned (a map), or nothing (a filter's drop), with
      // nothing emitted through the context.
      const plain = ctx.out.length === 0 && ctx.side.length === sides;
      if (result === undefined && plain) continue;
      if (
        plain && looksLikeRecord(result as StreamRecord<unknown>) &&
        (result as { then?: unknown }).then === undefined
      ) out.push(result as StreamRecord<unknown>);
      else if (isThenable(result)) {
        fast.stop = Stop.Async;
        fast.pending = result;
        fast.sides = sides, fast.deads = deads, fast.outs = outs;
        return i;
      } else collect(ctx, out, outs, sides, result);
    } catch (error) {
      // `#slow` rethrows it as the record's first attempt, and undoes what that attempt emitted.
      fast.stop = Stop.Threw;
      fast.pending = error;
      fast.sides = sides, fast.deads = deads, fast.outs = outs;
      return i;
    }
    if (out.length >= chunk) {
      fast.stop = Stop.Full;
      return i + 1;
    }
  }
  fast.stop = Stop.End;
  return n;
}

/** A processor instance in a chain. */
export class ProcessorOp extends Op {
  readonly #hooks: ProcessorInstance<unknown, unknown>;
  readonly #next: Downstream;
  /** Highest watermark this stage generated (when `spec.watermarks` is set). */
  #generated = -Infinity;
  /** Where {@linkcode processSync} stopped, and why. */
  readonly #fast: FastState = { stop: Stop.End, pending: undefined, sides: 0, deads: 0, outs: 0 };
  readonly #beat: () => void;

  constructor(
    spec: StageSpec,
    services: TaskServices,
    ctx: Context,
    hooks: ProcessorInstance<unknown, unknown>,
    next: Downstream,
  ) {
    super(spec, services, ctx);
    this.#hooks = hooks;
    this.#next = next;
    this.#beat = () => services.beat();
  }

  /** Takes what the hook emitted plus its return value. */
  #collect(result: unknown, hook: string): StreamRecord<unknown>[] {
    const out = this.ctx.out;
    this.ctx.out = [];
    if (result !== undefined && result !== null) {
      if (Array.isArray(result)) {
        for (const r of result) if (r !== undefined && r !== null) out.push(r);
      } else out.push(result as StreamRecord<unknown>);
    }
    checkOutput(out, 0, hook);
    return out;
  }

  async run(records: StreamRecord<unknown>[], token: Token): Promise<void> {
    const started = performance.now();
    this.counters.in += records.length;
    const before = this.#hooks.beforeBatch;
    // A transient fault (a lookup store down) holds the batch, and so backpressure, while it lasts.
    if (before) await this.retrying(() => before.call(this.#hooks, records, this.ctx));
    let out: StreamRecord<unknown>[] = [];
    const failed: [StreamRecord<unknown>, ErrorInfo, number][] = [];
    const ctx = this.ctx;
    const hooks = this.#hooks;
    // A stage that emits many records per input hands them on as they come, waiting for credit,
    // rather than the whole batch's worth at once: records in flight stay bounded.
    const chunk = 2 * this.services.batchSize;
    let maxTs = -Infinity;
    const handOn = async (part: StreamRecord<unknown>[]) => {
      this.counters.out += part.length;
      // A ts of +∞ (bad data) would make every later record late: it does not move time.
      if (this.spec.watermarks) {
        for (const r of part) if (r.ts > maxTs && r.ts !== Infinity) maxTs = r.ts;
      }
      await this.#next.run(part, token);
    };
    // Set where a record emitted several: one each (a map, a filter) never fills a chunk.
    let full = false;
    const fast = this.#fast;
    const beat = this.#beat;
    for (let i = 0; i < records.length;) {
      if (full) {
        full = false;
        const part = out;
        out = [];
        await handOn(part);
        await this.#next.ready();
        // Killed meanwhile (its stages are closing): the rest of the batch is replayed elsewhere.
        if (this.services.signal.aborted) throw new HookFailure(this.spec.stage, "stopped");
      }
      // Records whose process() returns at once, without a throw, in one synchronous loop.
      i = processSync(hooks, ctx, records, i, out, chunk, beat, fast);
      if (fast.stop === Stop.Full) full = true;
      else if (fast.stop !== Stop.End) {
        const record = records[i++]!;
        await this.#slow(record, out, failed);
        full = out.length >= chunk;
      }
    }
    this.settle(token, failed);
    observe(this.counters, performance.now() - started);
    if (out.length > 0) await handOn(out);
    if (this.spec.watermarks && maxTs > -Infinity) {
      const wm = maxTs - this.spec.watermarks.outOfOrdernessMs;
      if (wm > this.#generated) {
        this.#generated = wm;
        await this.#next.watermark(wm);
      }
    }
  }

  /**
   * The record {@linkcode processSync} stopped at (its process() returned a promise, or threw, as
   * `#fast` says), with its retries: a throw counts towards `maxRetries`, a `RetriableError` is
   * retried beside them with backoff; past `maxRetries` the record joins `failed`. What a failed
   * attempt emitted, sent aside or dead-lettered is dropped with it.
   */
  async #slow(
    record: StreamRecord<unknown>,
    out: StreamRecord<unknown>[],
    failed: [StreamRecord<unknown>, ErrorInfo, number][],
  ): Promise<void> {
    const ctx = this.ctx;
    const fast = this.#fast;
    const { sides, deads, outs } = fast;
    let first: Stop | undefined = fast.stop;
    let pending = fast.pending;
    fast.pending = undefined;
    for (let attempt = 1, transient = 0;; attempt++) {
      try {
        let result: unknown;
        if (first === Stop.Threw) {
          first = undefined;
          throw pending;
        } else if (first === Stop.Async) {
          first = undefined;
          result = await (pending as PromiseLike<unknown>);
        } else {
          result = this.#hooks.process(record, ctx);
          if (isThenable(result)) result = await result;
        }
        pending = undefined;
        collect(ctx, out, outs, sides, result);
        return;
      } catch (error) {
        out.length = outs;
        ctx.out.length = 0;
        ctx.side.length = sides;
        ctx.dead.length = deads;
        this.counters.failed++;
        if (isRetriable(error)) {
          await this.pause(++transient, error);
          attempt--;
          continue;
        }
        if (attempt > this.spec.maxRetries) {
          failed.push([record, toErrorInfo(error), attempt]);
          return;
        }
      }
    }
  }

  ready(): Promise<void> {
    return this.#next.ready();
  }

  async #fromHook(hook: string, call: () => unknown): Promise<void> {
    const token = this.services.hookToken();
    const result = await this.retrying(call);
    let out: StreamRecord<unknown>[];
    try {
      out = this.#collect(result, hook);
      checkSide(this.ctx.side, 0, hook);
    } catch (error) {
      // No input record to dead-letter: output a hook cannot pass on breaks its contract, and
      // fails the run at once.
      throw new HookFailure(this.spec.stage, contractError((error as Error).message));
    }
    this.settle(token);
    this.counters.out += out.length;
    if (out.length > 0) await this.#next.run(out, token);
    token.release();
  }

  watermark(wm: number): Promise<void> {
    // Never back: restored at its checkpoint's, a stage behind one that generates watermarks
    // anew waits until they pass it.
    if (wm <= (this.ctx.received ?? -Infinity)) return SETTLED;
    this.ctx.received = wm;
    // The usual case, every batch: no hook, so no async frame of its own on the way down.
    if (!this.#hooks.onWatermark && !this.spec.watermarks) return this.#next.watermark(wm);
    return this.#watermarkHooked(wm);
  }

  async #watermarkHooked(wm: number): Promise<void> {
    const hook = this.#hooks.onWatermark;
    if (hook) await this.#fromHook("onWatermark()", () => hook.call(this.#hooks, wm, this.ctx));
    // A stage that generates watermarks passes on only the end of input from upstream.
    if (!this.spec.watermarks) await this.#next.watermark(wm);
    else if (wm === Infinity && this.#generated < Infinity) {
      this.#generated = Infinity;
      await this.#next.watermark(wm);
    }
  }

  async tick(now: number): Promise<void> {
    const hook = this.#hooks.onTick;
    if (hook) await this.#fromHook("onTick()", () => hook.call(this.#hooks, now, this.ctx));
    await this.#next.tick(now);
  }

  async flush(): Promise<void> {
    const hook = this.#hooks.flush;
    if (hook) await this.#fromHook("flush()", () => hook.call(this.#hooks, this.ctx));
    await this.#next.flush();
  }

  get hasTick(): boolean {
    return typeof this.#hooks.onTick === "function";
  }

  protected override extraSnapshot(): unknown {
    return this.#hooks.snapshot?.(this.ctx);
  }

  protected override async restoreExtra(extra: unknown): Promise<void> {
    if (extra !== undefined) await this.#hooks.restore?.(extra, this.ctx);
  }

  async close(): Promise<void> {
    await this.#hooks.close?.(this.ctx);
  }
}

/** A sink instance at the end of a chain. */
export class SinkOp extends Op {
  readonly #hooks: SinkInstance<unknown>;
  /**
   * Records per write when the sink is fused behind a processor, which hands it whatever one
   * input batch or watermark produced (a few fired windows, say): those are gathered into
   * writes of up to this many, and the task drains the rest whenever it runs out of work, so
   * nothing waits for more input. 0: each batch is written as it comes (a channel batched it).
   */
  coalesce = 0;
  #pending: [StreamRecord<unknown>[], Token][] = [];
  #pendingCount = 0;

  constructor(spec: StageSpec, services: TaskServices, ctx: Context, hooks: SinkInstance<unknown>) {
    super(spec, services, ctx);
    this.#hooks = hooks;
  }

  async #write(records: StreamRecord<unknown>[]): Promise<void> {
    await this.#hooks.write(records, this.ctx as StageContext<never>);
  }

  run(records: StreamRecord<unknown>[], token: Token): Promise<void> {
    if (this.coalesce <= 0) return this.#run(records, token);
    token.hold();
    this.#pending.push([records, token]);
    this.#pendingCount += records.length;
    return this.#pendingCount >= this.coalesce ? this.drain() : Promise.resolve();
  }

  /** Writes what `run` gathered, as one batch; each input's token is released once it is done. */
  async drain(): Promise<void> {
    if (this.#pending.length === 0) return;
    const groups = this.#pending;
    this.#pending = [];
    this.#pendingCount = 0;
    const records = groups.length === 1 ? groups[0]![0] : groups.flatMap(([r]) => r);
    const token = new Token(() => {
      for (const [, t] of groups) t.release();
    });
    await this.#run(records, token);
    token.release();
  }

  async #run(records: StreamRecord<unknown>[], token: Token): Promise<void> {
    const started = performance.now();
    this.counters.in += records.length;
    const failed: [StreamRecord<unknown>, ErrorInfo, number][] = [];
    const ctx = this.ctx;
    // What a failed write dead-lettered or sent aside is dropped with it.
    const sides = ctx.side.length, deads = ctx.dead.length;
    let attempt = 0;
    for (;;) {
      try {
        await this.#write(records);
        break;
      } catch (error) {
        ctx.side.length = sides;
        ctx.dead.length = deads;
        attempt++;
        this.counters.failed++;
        if (isRetriable(error) || attempt <= this.spec.maxRetries) {
          await this.pause(attempt, error);
          continue;
        }
        if (this.services.signal.aborted) throw new HookFailure(this.spec.stage, error);
        // Isolate the bad records: write one by one, dead-letter those that still fail.
        for (const record of records) {
          const side = ctx.side.length, dead = ctx.dead.length;
          try {
            await this.#write([record]);
          } catch (e) {
            ctx.side.length = side;
            ctx.dead.length = dead;
            this.counters.failed++;
            failed.push([record, toErrorInfo(e), attempt + 1]);
          }
        }
        break;
      }
    }
    // Written: all but those it dead-lettered, itself or for failing.
    const written = records.length - failed.length - (ctx.dead.length - deads);
    this.settle(token, failed);
    this.counters.out += written;
    observe(this.counters, performance.now() - started);
  }

  ready(): Promise<void> {
    return Promise.resolve();
  }

  watermark(wm: number): Promise<void> {
    this.ctx.received = Math.max(wm, this.ctx.received ?? -Infinity);
    return SETTLED;
  }
  tick(): Promise<void> {
    return this.drain();
  }

  async flush(): Promise<void> {
    await this.drain();
    await this.retrying(() => this.#hooks.flush?.(this.ctx as StageContext<never>));
  }

  async close(): Promise<void> {
    await this.#hooks.close?.(this.ctx as StageContext<never>);
  }
}

/** Whether an error is a transient fault (`RetriableError`; it crosses workers as a code). */
export function isRetriable(error: unknown): boolean {
  return (error as { code?: unknown } | null)?.code === "E_RETRIABLE";
}

/** Exponential backoff with jitter (half to all of the ceiling), capped at 5 s; ends on abort. */
export function backoff(
  attempt: number,
  signal?: AbortSignal,
  baseMs = 20,
  maxMs = 5000,
): Promise<void> {
  const ceiling = Math.min(maxMs, baseMs * 2 ** Math.min(attempt, 20));
  return sleep(ceiling / 2 + Math.random() * ceiling / 2, signal);
}
