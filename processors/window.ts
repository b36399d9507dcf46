/**
 * `window`: tumbling, sliding and session windows on event time (watermarks) or processing time,
 * aggregated incrementally per key.
 *
 * @module
 */
import { z } from "../actors/_deps.ts";
import type { StreamRecord } from "../actors/record.ts";
import { defineProcessor, type ProcessorDefinition, type StageContext } from "../actors/stage.ts";
import type { StageOptions, StageRef } from "../actors/stage_ref.ts";
import { processorRef } from "./_config.ts";
import { eventTime, groupKey, keyOfGroup } from "./_fields.ts";
import { aggregateSpecsSchema, compileAggregator, toWireSpecs } from "./_aggregator.ts";
import { addToSession, fixedWindows, tumblingStart, type Win } from "./_window_assign.ts";
import type { AggregateResults, AggregateSpecs, WireAggregateSpec } from "./aggregate_ops.ts";

/** Options every window type shares. */
export interface WindowCommon<S extends AggregateSpecs> {
  /**
   * Event time (`ts`, fired by watermarks) or processing time (`ctx.now()`, fired by ticks).
   * Default `"event"`.
   */
  time?: "event" | "processing";
  /**
   * How long after a window fired late records still update and re-fire it, ms (event time
   * only). Default 0.
   */
  allowedLatenessMs?: number;
  /** The named aggregates each window computes. */
  aggregate: S;
}

/**
 * Window layouts. `offsetMs` shifts fixed windows (e.g. time zones). Defaults: `offsetMs` 0.
 * Sliding windows need `slideMs ≤ sizeMs` (so that every record is in at least one window) and at
 * most 1000 windows per record (`sizeMs / slideMs ≤ 1000`).
 */
export type WindowLayout =
  | { type: "tumbling"; sizeMs: number; offsetMs?: number }
  | { type: "sliding"; sizeMs: number; slideMs: number; offsetMs?: number }
  | { type: "session"; gapMs: number };

/** Options of {@linkcode window}. */
export type WindowOptions<S extends AggregateSpecs> = WindowLayout & WindowCommon<S>;

/** The value of a fired window: its bounds, its key and the aggregate results. */
export type WindowResult<S extends AggregateSpecs> =
  & { windowStart: number; windowEnd: number; key?: string }
  & AggregateResults<S>;

/** Config of the {@linkcode windowStage} definition: the options with the specs in wire form. */
export type WindowConfig = WindowLayout & {
  /** See {@linkcode WindowCommon}. */
  time?: "event" | "processing";
  /** See {@linkcode WindowCommon}. */
  allowedLatenessMs?: number;
  /** Named aggregates in wire form. */
  aggregate: Record<string, WireAggregateSpec>;
};

const ms = z.number().positive().finite();
const offset = z.number().min(0).finite().optional();
const common = {
  time: z.enum(["event", "processing"]).optional(),
  allowedLatenessMs: z.number().min(0).finite().optional(),
  aggregate: aggregateSpecsSchema,
};
const windowConfig: z.ZodType<WindowConfig> = z.discriminatedUnion("type", [
  z.object({ type: z.literal("tumbling"), sizeMs: ms, offsetMs: offset, ...common }).strict(),
  z.object({
    type: z.literal("sliding"),
    sizeMs: ms,
    slideMs: ms,
    offsetMs: offset,
    ...common,
  }).strict(),
  z.object({ type: z.literal("session"), gapMs: ms, ...common }).strict(),
]).superRefine((c, ctx) => {
  for (const name of ["windowStart", "windowEnd", "key"]) {
    if (name in c.aggregate) {
      ctx.addIssue({ code: "custom", path: ["aggregate", name], message: "Reserved name" });
    }
  }
  if (c.type === "sliding" && c.slideMs > c.sizeMs) {
    ctx.addIssue({
      code: "custom",
      path: ["slideMs"],
      message: "Must be ≤ sizeMs: records between windows would belong to no window",
    });
  }
  if (c.type === "sliding" && c.sizeMs / c.slideMs > 1000) {
    ctx.addIssue({
      code: "custom",
      path: ["slideMs"],
      message: "Too small: over 1000 windows per record",
    });
  }
  if (c.type === "session") {
    for (const [name, spec] of Object.entries(c.aggregate)) {
      if (spec.op === "reduce" && !spec.merge) {
        const message = "Required: session windows merge, so reduce needs a merge function";
        ctx.addIssue({ code: "custom", path: ["aggregate", name, "merge"], message });
      }
    }
  }
  if (c.time === "processing" && (c.allowedLatenessMs ?? 0) > 0) {
    const message = "Only applies to event time";
    ctx.addIssue({ code: "custom", path: ["allowedLatenessMs"], message });
  }
});

/**
 * The `window` processor definition (config: {@linkcode WindowOptions} with reduce functions as
 * InlineFn). Stateful: open windows live in keyed state (`"window"`), so they move with their
 * partitions on rescale. Prefer the {@linkcode window} builder.
 *
 * @example
 * ```ts
 * import { windowStage } from "@sluice/sluice";
 * import assert from "node:assert/strict";
 *
 * assert.equal(windowStage.stateful, true);
 * ```
 */
export const windowStage: ProcessorDefinition<unknown, unknown, WindowConfig> = defineProcessor({
  name: "window",
  config: windowConfig,
  stateful: true,
  open(config) {
    const aggregator = compileAggregator(config.aggregate);
    const byEventTime = config.time !== "processing";
    const lateness = config.allowedLatenessMs ?? 0;

    const output = (key: string | undefined, w: Win): StreamRecord<unknown> => {
      const value: Record<string, unknown> = key === undefined
        ? { windowStart: w.s, windowEnd: w.e }
        : { windowStart: w.s, windowEnd: w.e, key };
      aggregator.resultsInto(w.a, value);
      return key === undefined ? { ts: w.e - 1, value } : { key, ts: w.e - 1, value };
    };

    // Whether `advance` has anything to do for these windows at `now`: fire one or forget one.
    const due = (wins: Win[], now: number): boolean => {
      for (const w of wins) if ((!w.f && w.e <= now) || w.e + lateness <= now) return true;
      return wins.length === 0;
    };

    // Fires windows that ended by `now` and forgets those past their allowed lateness.
    const advance = (now: number, ctx: StageContext<unknown>, all: boolean): void => {
      const state = ctx.keyed<Win[]>("window");
      const fired = new FiredWindows();
      const emptied: string[] = [];
      for (const [group, wins] of state.entries()) {
        // Most watermarks leave most keys as they are: skip those without copying their windows.
        if (!all && !due(wins, now)) continue;
        const key = keyOfGroup(group);
        const keep: Win[] = [];
        for (const w of wins) {
          if (!w.f && (all || w.e <= now)) {
            fired.add(w.e, group, output(key, w));
            w.f = true;
          }
          if (!all && w.e + lateness > now) keep.push(w);
        }
        if (keep.length === 0) emptied.push(group);
        else state.set(group, keep);
      }
      for (const group of emptied) state.delete(group);
      fired.emit(ctx);
    };

    // A window updated after the watermark passed its end fires again at once (as Flink does);
    // one updated before (it fired on another instance, ahead in time) fires again when it passes.
    const refire = (group: string, w: Win, wm: number, ctx: StageContext<unknown>): void => {
      if (w.e > wm) {
        w.f = false;
        return;
      }
      w.f = true;
      ctx.emit(output(keyOfGroup(group), w));
    };

    // The window of `wins` starting at `s`, if open.
    const find = (wins: Win[], s: number): Win | undefined => {
      for (const w of wins) if (w.s === s) return w;
      return undefined;
    };

    // Adds `record` at `t` to its tumbling window; undefined when that window expired (late).
    const addTumbling = (
      layout: { sizeMs: number; offsetMs?: number },
      wins: Win[],
      t: number,
      wm: number,
      record: StreamRecord<unknown>,
    ): Win | undefined => {
      const s = tumblingStart(layout, t);
      const e = s + layout.sizeMs;
      if (e + lateness <= wm) return undefined;
      const open = find(wins, s);
      if (open) {
        aggregator.add(open.a, record); // may throw: nothing changed
        return open;
      }
      const w: Win = { s, e, a: aggregator.init(), f: false };
      aggregator.add(w.a, record); // may throw: nothing changed
      wins.push(w);
      return w;
    };

    // Adds `record` at `t` to every live sliding window holding it; returns those (none: late).
    const addSliding = (
      layout: WindowLayout,
      wins: Win[],
      t: number,
      wm: number,
      record: StreamRecord<unknown>,
    ): Win[] => {
      const targets: Win[] = [];
      const created: Win[] = [];
      for (const [s, e] of fixedWindows(layout, t)) {
        if (e + lateness <= wm) continue;
        let w = find(wins, s);
        if (!w) created.push(w = { s, e, a: aggregator.init(), f: false });
        targets.push(w);
      }
      // The first add may throw: nothing changed yet.
      for (const w of targets) aggregator.add(w.a, record);
      for (const w of created) wins.push(w);
      return targets;
    };

    return {
      process(record, ctx) {
        const state = ctx.keyed<Win[]>("window");
        const group = groupKey(record);
        const t = byEventTime ? eventTime(record, "window") : ctx.now();
        const wm = byEventTime ? ctx.watermark : -Infinity;
        const held = state.get(group);
        const wins = held ?? [];
        let touched: Win | Win[] | undefined;
        if (config.type === "tumbling") {
          touched = addTumbling(config, wins, t, wm, record);
        } else if (config.type === "sliding") {
          touched = addSliding(config, wins, t, wm, record);
          if (touched.length === 0) touched = undefined;
        } else {
          const expired = (end: number) => end + lateness <= wm;
          const add = (acc: Win["a"]) => aggregator.add(acc, record);
          touched = addToSession(wins, t, config.gapMs, expired, aggregator, add);
        }
        if (touched === undefined) {
          ctx.emitTo("late", record);
          return;
        }
        // Windows held already were changed in place: `get` has marked them for the checkpoint.
        if (held === undefined) state.set(group, wins);
        if (!Array.isArray(touched)) refire(group, touched, wm, ctx);
        else for (const w of touched) refire(group, w, wm, ctx);
      },
      onWatermark(watermark, ctx) {
        if (byEventTime) advance(watermark, ctx, false);
      },
      onTick(now, ctx) {
        if (!byEventTime) advance(now, ctx, false);
      },
      flush(ctx) {
        advance(Infinity, ctx, true);
      },
    };
  },
});

/**
 * The records of the windows one watermark fired, emitted in window-end order, then group order
 * (records of the same end and group in the order they came). The few distinct ends are sorted
 * with a comparator, each end's groups with the default sort (code-unit order, as `<` compares):
 * no comparator call per pair of groups.
 */
class FiredWindows {
  readonly #byEnd = new Map<number, Map<string, StreamRecord<unknown>[]>>();

  add(end: number, group: string, record: StreamRecord<unknown>): void {
    let groups = this.#byEnd.get(end);
    if (!groups) this.#byEnd.set(end, groups = new Map());
    const records = groups.get(group);
    if (records) records.push(record);
    else groups.set(group, [record]);
  }

  emit(ctx: StageContext<unknown>): void {
    for (const end of [...this.#byEnd.keys()].sort((a, b) => a - b)) {
      const groups = this.#byEnd.get(end)!;
      for (const group of [...groups.keys()].sort()) {
        for (const record of groups.get(group)!) ctx.emit(record);
      }
    }
  }
}

/**
 * Groups records into windows per key and emits one aggregate per window.
 *
 * - **Layouts**: `tumbling` (`sizeMs`), `sliding` (`sizeMs`, `slideMs ≤ sizeMs`: a record is in
 *   every window covering it) and `session` (`gapMs`: a key's window closes after a gap of
 *   inactivity; windows that touch merge). Windows are half-open `[start, end)`: `ts == end` is
 *   in the next.
 * - **Event time** (default): a window fires when the watermark reaches its end
 *   (`windowEnd <= watermark`). Until `windowEnd + allowedLatenessMs`, a late record still
 *   updates it and re-fires it at once with the updated result; after that the window is gone and
 *   records for it go to the side output `"late"` (dead-lettered by the runtime when not wired),
 *   never silently dropped. **Processing time** assigns records by `ctx.now()` and fires on ticks.
 * - Output: `{ key, ts: windowEnd - 1, value: { windowStart, windowEnd, key, ...aggregates } }`,
 *   in window-end order, then key order (no key first). Records without a key share one window
 *   set and their output has no key; records with the key `""` are keyed, apart from them.
 * - End of input fires every open window.
 *
 * @param options Layout, time, allowed lateness and the aggregates (see `aggregate_ops.ts`).
 * @param stageOptions Stage options; `tickMs` sets the processing-time resolution.
 * @returns A stage reference for a pipeline.
 * @throws {ConfigError} When the options are invalid (the message names the path).
 *
 * @example Revenue per second per store
 * ```ts
 * import { window } from "@sluice/sluice";
 * import assert from "node:assert/strict";
 *
 * const ref = window({
 *   type: "tumbling",
 *   sizeMs: 1000,
 *   aggregate: { revenue: { op: "sum", field: "revenue" }, orders: { op: "count" } },
 * });
 * assert.equal(ref.export, "windowStage");
 * assert.throws(
 *   () => window({ type: "tumbling", sizeMs: 0, aggregate: { n: { op: "count" } } }),
 *   /config\.sizeMs: Number must be greater than/,
 * );
 * assert.throws(
 *   () => window({ type: "sliding", sizeMs: 5, slideMs: 10, aggregate: { n: { op: "count" } } }),
 *   /config\.slideMs: Must be ≤ sizeMs/,
 * );
 * ```
 */
export function window<I = unknown, S extends AggregateSpecs = AggregateSpecs>(
  options: WindowOptions<S>,
  stageOptions?: StageOptions,
): StageRef<I, WindowResult<S>> {
  const config = { ...options, aggregate: toWireSpecs(options.aggregate) };
  return processorRef(windowStage, import.meta.url, "windowStage", config, stageOptions);
}
