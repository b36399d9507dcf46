/**
 * `sort`: orders records within bounded batches (N records or T ms) or within event-time windows.
 *
 * @module
 */
import { z } from "../actors/_deps.ts";
import type { StreamRecord } from "../actors/record.ts";
import { defineProcessor, type ProcessorDefinition, type StageContext } from "../actors/stage.ts";
import type { StageOptions, StageRef } from "../actors/stage_ref.ts";
import { fieldSchema, processorRef } from "./_config.ts";
import { comparator, type SortKeySpec } from "./_compare.ts";
import { eventTime } from "./_fields.ts";

/**
 * A sort key: a field path of the value (`"price"`, `"-price"` for descending), `"$ts"` for event
 * time, `"$key"` for the record key, or `{ field, order }`. Missing, `null` and `NaN` values sort
 * last in either order; numbers sort before strings, strings before booleans.
 */
export type SortKey = SortKeySpec;

/** Options of {@linkcode sort}: `by`, then either batch bounds or `windowMs`. */
export interface SortOptions {
  /** Sort key(s), most significant first. The sort is stable. */
  by: SortKey | SortKey[];
  /** Emit once this many records are held. Default 1000 (when `windowMs` is not set). */
  size?: number;
  /** Emit once the oldest held record waited this long (processing time). Default none. */
  timeoutMs?: number;
  /**
   * Sort within tumbling event-time windows of this size instead of batches: a window is emitted,
   * sorted, when the watermark reaches its end; records for an emitted window go to the side
   * output `"late"`. Default none.
   */
  windowMs?: number;
}

const sortKeySchema = z.union([
  fieldSchema,
  z.object({ field: fieldSchema, order: z.enum(["asc", "desc"]).optional() }).strict(),
]);

const sortConfig: z.ZodType<SortOptions> = z.object({
  by: z.union([sortKeySchema, z.array(sortKeySchema).min(1)]),
  size: z.number().int().safe().positive().optional(),
  timeoutMs: z.number().positive().finite().optional(),
  windowMs: z.number().positive().finite().optional(),
}).strict().refine((c) => c.windowMs === undefined || (!c.size && !c.timeoutMs), {
  path: ["windowMs"],
  message: "Cannot combine with size or timeoutMs",
});

interface SortState {
  held: StreamRecord<unknown>[];
  since: number;
  windows: [number, StreamRecord<unknown>[]][];
}

/**
 * The `sort` processor definition (config: {@linkcode SortOptions}). Stateful; the held records
 * are per instance and travel through `snapshot`/`restore`. Prefer the {@linkcode sort} builder.
 *
 * @example
 * ```ts
 * import { sortStage } from "@sluice/sluice";
 * import assert from "node:assert/strict";
 *
 * assert.equal(sortStage.stateful, true);
 * ```
 */
export const sortStage: ProcessorDefinition<unknown, unknown, SortOptions> = defineProcessor({
  name: "sort",
  config: sortConfig,
  stateful: true,
  open(config) {
    const compare = comparator(Array.isArray(config.by) ? config.by : [config.by]);
    const windowMs = config.windowMs;
    const size = config.size ?? (config.timeoutMs ? Infinity : 1000);
    let held: StreamRecord<unknown>[] = [];
    let since = 0;
    let windows = new Map<number, StreamRecord<unknown>[]>();

    const release = (ctx: StageContext<unknown>): void => {
      const out = held.sort(compare);
      held = [];
      for (const r of out) ctx.emit(r);
    };
    const fire = (watermark: number, ctx: StageContext<unknown>): void => {
      const ready = [...windows.keys()].filter((s) => s + windowMs! <= watermark).sort((a, b) =>
        a - b
      );
      for (const start of ready) {
        for (const r of windows.get(start)!.sort(compare)) ctx.emit(r);
        windows.delete(start);
      }
    };

    return {
      process(record, ctx) {
        if (windowMs === undefined) {
          if (held.length === 0) since = ctx.now();
          held.push(record);
          if (held.length >= size) release(ctx);
          return;
        }
        const ts = eventTime(record, "sort");
        const start = ts - (((ts % windowMs) + windowMs) % windowMs);
        if (start + windowMs <= ctx.watermark) return ctx.emitTo("late", record);
        const bucket = windows.get(start);
        if (bucket) bucket.push(record);
        else windows.set(start, [record]);
      },
      onWatermark(watermark, ctx) {
        if (windowMs !== undefined) fire(watermark, ctx);
      },
      onTick(now, ctx) {
        if (config.timeoutMs && held.length > 0 && now - since >= config.timeoutMs) release(ctx);
      },
      flush(ctx) {
        release(ctx);
        fire(Infinity, ctx);
      },
      snapshot(): SortState {
        return { held, since, windows: [...windows] };
      },
      restore(state) {
        const s = state as SortState;
        held = [...s.held];
        since = s.since;
        windows = new Map(s.windows);
      },
    };
  },
});

/**
 * Sorts records by one or more keys within a bounded scope: batches of `size` records (or what
 * arrived within `timeoutMs`), or tumbling event-time windows of `windowMs` emitted on the
 * watermark (for example `sort({ by: "$ts", windowMs: 1000 })` reorders out-of-order events).
 * End of input emits everything held, sorted.
 *
 * @param options Sort keys and scope; see {@linkcode SortOptions}.
 * @param stageOptions Stage options; `tickMs` sets the `timeoutMs` resolution.
 * @returns A stage reference for a pipeline.
 * @throws {ConfigError} When the options are invalid (the message names the path).
 *
 * @example Highest price first, in batches of 100
 * ```ts
 * import { sort } from "@sluice/sluice";
 * import assert from "node:assert/strict";
 *
 * const ref = sort({ by: ["-price", "name"], size: 100 });
 * assert.equal(ref.export, "sortStage");
 * assert.throws(() => sort({ by: "price", size: 10, windowMs: 1000 }), /config\.windowMs/);
 * ```
 */
export function sort<I = unknown>(
  options: SortOptions,
  stageOptions?: StageOptions,
): StageRef<I, I> {
  return processorRef(sortStage, import.meta.url, "sortStage", options, stageOptions);
}
