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
import { addToSession, fixedWindows, type Win } from "./_window_assign.ts";
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

    const output = (group: string, w: Win): StreamRecord<unknown> => {
      const key = keyOfGroup(group);
      const head = key === undefined ? {} : { key };
      const value = { windowStart: w.s, windowEnd: w.e, ...head, ...aggregator.results(w.a) };
      return { ...head, ts: w.e - 1, value };
    };

    // Fires windows that ended by `now` and forgets those past their allowed lateness.
    const advance = (now: number, ctx: StageContext<unknown>, all: boolean): void => {
      const state = ctx.keyed<Win[]>("window");
      const fired: [number, string, StreamRecord<unknown>][] = [];
      const emptied: string[] = [];
      for (const [group, wins] of state.entries()) {
        let changed = false;
        const keep = wins.filter((w) => {
          if (!w.f && (all || w.e <= now)) {
            fired.push([w.e, group, output(group, w)]);
            w.f = changed = true;
          }
          return !all && w.e + lateness > now;
        });
        if (keep.length === 0) emptied.push(group);
        else if (changed || keep.length !== wins.length) state.set(group, keep);
      }
      for (const group of emptied) state.delete(group);
      fired.sort((a, b) => a[0] - b[0] || (a[1] < b[1] ? -1 : a[1] > b[1] ? 1 : 0));
      for (const [, , record] of fired) ctx.emit(record);
    };

    return {
      process(record, ctx) {
        const state = ctx.keyed<Win[]>("window");
        const group = groupKey(record);
        const t = byEventTime ? eventTime(record, "window") : ctx.now();
        const wm = byEventTime ? ctx.watermark : -Infinity;
        const expired = (end: number) => end + lateness <= wm;
        const wins = state.get(group) ?? [];
        const touched: Win[] = [];
        if (config.type === "session") {
          const add = (acc: Win["a"]) => aggregator.add(acc, record);
          const w = addToSession(wins, t, config.gapMs, expired, aggregator, add);
          if (w) touched.push(w);
        } else {
          const live = fixedWindows(config, t).filter(([, e]) => !expired(e));
          const targets = live.map(([s, e]) =>
            wins.find((w) => w.s === s) ?? { s, e, a: aggregator.init(), f: false }
          );
          if (targets[0]) aggregator.add(targets[0].a, record); // may throw: nothing changed yet
          for (const w of targets.slice(1)) aggregator.add(w.a, record);
          for (const w of targets) if (!wins.includes(w)) wins.push(w);
          touched.push(...targets);
        }
        if (touched.length === 0) {
          ctx.emitTo("late", record);
          return;
        }
        state.set(group, wins);
        // Late but within the allowed lateness: fire the updated result at once (as Flink does).
        for (const w of touched) {
          if (w.e <= wm) {
            w.f = true;
            ctx.emit(output(group, w));
          }
        }
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
 *   /config\.sizeMs: Too small/,
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
