// A tiny single-instance driver for processor stages, standing in for testPipeline() until the
// runtime has one: imports the ref's module, validates the config, opens the instance with a fake
// StageContext (real KeyedState, a settable clock and watermark) and collects every output.
import type { StreamRecord } from "../../../actors/record.ts";
import type {
  ProcessorDefinition,
  ProcessorInstance,
  StageContext,
} from "../../../actors/stage.ts";
import type { StageRef } from "../../../actors/stage_ref.ts";
import { KeyedState } from "../../../actors/keyed_state.ts";
import { partitionOf } from "../../../actors/partitioner.ts";
import { parseConfig } from "../../../actors/_config.ts";

/** A record sent to the dead-letter sink, with its reason. */
export interface DeadLetter {
  record: StreamRecord<unknown>;
  reason: string;
}

/** What a stateful instance carries across a restart: keyed state and its own snapshot. */
export interface HarnessSnapshot {
  keyed: [string, [number, [string, unknown][]][]][];
  extra: unknown;
}

/** Harness settings. */
export interface HarnessOptions {
  /** Initial clock, ms. Default 0. */
  now?: number;
  /** Logical partitions. Default 64. */
  partitions?: number;
  /** Retries of a failing record before it is dead-lettered. Default 2. */
  maxRetries?: number;
  /** State to restore into the fresh instance. */
  restore?: HarnessSnapshot;
}

// deno-lint-ignore no-explicit-any
type AnyProcessor = ProcessorDefinition<any, any, any>;

/** One opened processor instance and everything it produced. */
export class Harness<I = unknown, O = unknown> {
  /** Records emitted downstream, in order. */
  readonly emitted: StreamRecord<O>[] = [];
  /** Records sent to side outputs, by output name. */
  readonly side: Record<string, StreamRecord<unknown>[]> = {};
  /** Dead-lettered records with reasons. */
  readonly dead: DeadLetter[] = [];
  /** The clock `ctx.now()` reads; `tick()` moves it. */
  now: number;
  /** The watermark `ctx.watermark` reads; `advanceWatermark()` moves it. */
  watermark = -Infinity;
  readonly ctx: StageContext<O>;
  readonly #keyed = new Map<string, KeyedState<unknown>>();
  readonly #abort = new AbortController();
  readonly #maxRetries: number;
  #instance: ProcessorInstance<I, O> | undefined;
  #sink: StreamRecord<O>[] = this.emitted;

  constructor(options: HarnessOptions = {}) {
    this.now = options.now ?? 0;
    this.#maxRetries = options.maxRetries ?? 2;
    const partitions = options.partitions ?? 64;
    // deno-lint-ignore no-this-alias
    const self = this;
    this.ctx = {
      stage: "test",
      instance: 0,
      parallelism: 1,
      partitions,
      get watermark() {
        return self.watermark;
      },
      signal: this.#abort.signal,
      now: () => self.now,
      emit: (record) => void self.#sink.push(record),
      emitTo: (output, record) => void (self.side[output] ??= []).push(record),
      deadLetter: (record, reason) =>
        void self.dead.push({ record, reason: reason instanceof Error ? reason.message : reason }),
      keyed: <V>(name = "default") => {
        let state = self.#keyed.get(name);
        if (!state) self.#keyed.set(name, state = new KeyedState<unknown>(partitions));
        return state as KeyedState<V>;
      },
      partitionOf: (key) => partitionOf(key, partitions),
    };
  }

  /** Records sent to side output `name` so far (empty when none). */
  sideOf(name: string): StreamRecord<unknown>[] {
    return this.side[name] ?? [];
  }

  get instance(): ProcessorInstance<I, O> {
    if (!this.#instance) throw new Error("Cannot drive harness: not opened");
    return this.#instance;
  }

  /** Opens the instance (used by {@linkcode harness}). */
  async open(definition: AnyProcessor, config: unknown, restore?: HarnessSnapshot): Promise<void> {
    if (restore) {
      for (const [name, snap] of structuredClone(restore.keyed)) this.ctx.keyed(name).restore(snap);
    }
    this.#instance = await definition.open(config, this.ctx);
    if (restore?.extra !== undefined) {
      await this.#instance.restore?.(structuredClone(restore.extra), this.ctx);
    }
  }

  /** Feeds one batch, record by record, retrying failures; returns what it emitted. */
  async push(records: StreamRecord<I>[]): Promise<StreamRecord<O>[]> {
    const start = this.emitted.length;
    await this.instance.beforeBatch?.(records, this.ctx);
    for (const record of records) {
      for (let attempt = 0;; attempt++) {
        const pending: StreamRecord<O>[] = [];
        this.#sink = pending;
        try {
          const out = await this.instance.process(record, this.ctx);
          if (Array.isArray(out)) pending.push(...out);
          else if (out) pending.push(out);
          this.emitted.push(...pending);
          break;
        } catch (error) {
          if (attempt >= this.#maxRetries) {
            const reason = error instanceof Error ? error.message : String(error);
            this.dead.push({ record, reason });
            break;
          }
        } finally {
          this.#sink = this.emitted;
        }
      }
    }
    return this.emitted.slice(start);
  }

  /** Moves the watermark (only forward, like the runtime) and calls `onWatermark`. */
  async advanceWatermark(ms: number): Promise<StreamRecord<O>[]> {
    const start = this.emitted.length;
    if (ms > this.watermark) {
      this.watermark = ms;
      await this.instance.onWatermark?.(ms, this.ctx);
    }
    return this.emitted.slice(start);
  }

  /** Sets the clock to `now` and calls `onTick`. */
  async tick(now: number): Promise<StreamRecord<O>[]> {
    const start = this.emitted.length;
    this.now = now;
    await this.instance.onTick?.(now, this.ctx);
    return this.emitted.slice(start);
  }

  /** Signals end of input. */
  async flush(): Promise<StreamRecord<O>[]> {
    const start = this.emitted.length;
    await this.instance.flush?.(this.ctx);
    return this.emitted.slice(start);
  }

  /** Keyed state plus the instance's own snapshot, structured-cloned like a real checkpoint. */
  snapshot(): HarnessSnapshot {
    const keyed: HarnessSnapshot["keyed"] = [];
    for (const [name, state] of this.#keyed) keyed.push([name, state.snapshot()]);
    return structuredClone({ keyed, extra: this.instance.snapshot?.(this.ctx) });
  }

  /** Closes the instance and aborts its signal. */
  async close(): Promise<void> {
    this.#abort.abort();
    await this.#instance?.close?.(this.ctx);
  }
}

/**
 * Imports `ref.module`, validates `ref.config` with the definition's schema and opens one instance
 * (restoring `options.restore` into it first, when given).
 */
export async function harness<I, O>(
  ref: StageRef<I, O>,
  options: HarnessOptions = {},
): Promise<Harness<I, O>> {
  const mod = await import(ref.module) as Record<string, AnyProcessor | undefined>;
  const definition = mod[ref.export];
  if (!definition || definition.kind !== "processor") {
    throw new TypeError(`Cannot open ${ref.module}#${ref.export}: not a processor definition`);
  }
  const config = parseConfig(definition, definition.name, ref.config);
  const h = new Harness<I, O>(options);
  await h.open(definition, config, options.restore);
  return h;
}

/** Shorthand for a record. */
export function rec<T>(value: T, ts = 0, key?: string): StreamRecord<T> {
  return key === undefined ? { value, ts } : { key, value, ts };
}

/** A stage reference to `processors/<file>` with a raw, unchecked config (for config tests). */
export function rawRef(file: string, exportName: string, config: unknown): StageRef {
  const module = new URL(`../../../processors/${file}`, import.meta.url).href;
  return { kind: "processor", module, export: exportName, config };
}
