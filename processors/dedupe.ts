/**
 * `dedupe`: drops records already seen within a time-to-live, by key, by a field or by value.
 *
 * @module
 */
import { z } from "../actors/_deps.ts";
import type { StreamRecord } from "../actors/record.ts";
import { defineProcessor, type ProcessorDefinition, type StageContext } from "../actors/stage.ts";
import type { StageOptions, StageRef } from "../actors/stage_ref.ts";
import { fieldSchema, processorRef } from "./_config.ts";
import { eventTime, getField, groupKey } from "./_fields.ts";
import { identity } from "./_identity.ts";

/** Options of {@linkcode dedupe}. */
export interface DedupeOptions {
  /**
   * What makes two records the same: the record key, the whole value, or one field of the value.
   * Default `"key"`. Records without a key (or without the field) are always passed on.
   */
  by?: "key" | "value" | { field: string };
  /** How long a record is remembered, ms: one within `ttlMs` of the first is a duplicate. */
  ttlMs: number;
  /**
   * `"event"`: `ttlMs` is measured in event time (`ts`) and entries expire as the watermark
   * passes them; `"processing"`: measured with `ctx.now()`, entries expire on ticks. Default
   * `"event"`.
   */
  time?: "event" | "processing";
}

const dedupeConfig: z.ZodType<DedupeOptions> = z.object({
  by: z.union([z.enum(["key", "value"]), z.object({ field: fieldSchema }).strict()]).optional(),
  ttlMs: z.number().positive().finite(),
  time: z.enum(["event", "processing"]).optional(),
}).strict();

/** First-seen time of each identity, per record key. */
type Seen = Record<string, number>;

/**
 * The `dedupe` processor definition (config: {@linkcode DedupeOptions}). Stateful: what was seen
 * lives in keyed state (`"dedupe"`) under the record key, so it moves with its partition on
 * rescale. Prefer the {@linkcode dedupe} builder.
 *
 * @example
 * ```ts
 * import { dedupeStage } from "@sluice/sluice";
 * import assert from "node:assert/strict";
 *
 * assert.equal(dedupeStage.stateful, true);
 * ```
 */
export const dedupeStage: ProcessorDefinition<unknown, unknown, DedupeOptions> = defineProcessor({
  name: "dedupe",
  config: dedupeConfig,
  stateful: true,
  open(config) {
    const by = config.by ?? "key";
    const ttl = config.ttlMs;
    const byEventTime = config.time !== "processing";

    const identify = (record: StreamRecord<unknown>): string | undefined => {
      if (by === "key") return record.key;
      if (by === "value") return identity(record.value);
      const v = getField(record.value, by.field);
      return v === undefined || v === null ? undefined : identity(v);
    };

    const expire = (now: number, ctx: StageContext<unknown>): void => {
      const state = ctx.keyed<Seen>("dedupe");
      const emptied: string[] = [];
      for (const [group, seen] of state.entries()) {
        let changed = false;
        for (const [id, t] of Object.entries(seen)) {
          if (t + ttl <= now) {
            delete seen[id];
            changed = true;
          }
        }
        if (Object.keys(seen).length === 0) emptied.push(group);
        else if (changed) state.set(group, seen);
      }
      for (const group of emptied) state.delete(group);
    };

    return {
      process(record, ctx) {
        const id = identify(record);
        if (id === undefined) return record;
        const state = ctx.keyed<Seen>("dedupe");
        const group = groupKey(record);
        const t = byEventTime ? eventTime(record, "dedupe") : ctx.now();
        const seen = state.get(group) ?? {};
        const first = seen[id];
        if (first !== undefined && Math.abs(t - first) < ttl) return;
        seen[id] = t;
        state.set(group, seen);
        return record;
      },
      onWatermark(watermark, ctx) {
        if (byEventTime) expire(watermark, ctx);
      },
      onTick(now, ctx) {
        if (!byEventTime) expire(now, ctx);
      },
    };
  },
});

/**
 * Drops records already seen within `ttlMs` of the first occurrence (by key, value or field).
 * The window does not slide: a duplicate does not extend it. Entries expire as time passes, so
 * state stays bounded by the number of distinct records per TTL.
 *
 * With `parallelism > 1`, records are deduplicated within their record key's partition: key the
 * stream by the dedupe field (for example with `mapRecord`) so duplicates meet.
 *
 * @param options What identifies a record, the TTL and its time domain; see
 *   {@linkcode DedupeOptions}.
 * @param stageOptions Stage options.
 * @returns A stage reference for a pipeline.
 * @throws {ConfigError} When the options are invalid (the message names the path).
 *
 * @example Dropping repeated order events within a minute
 * ```ts
 * import { dedupe } from "@sluice/sluice";
 * import assert from "node:assert/strict";
 *
 * const ref = dedupe({ by: { field: "orderId" }, ttlMs: 60_000 });
 * assert.equal(ref.export, "dedupeStage");
 * assert.throws(() => dedupe({ ttlMs: -1 }), /config\.ttlMs: Number must be greater than/);
 * ```
 */
export function dedupe<I = unknown>(
  options: DedupeOptions,
  stageOptions?: StageOptions,
): StageRef<I, I> {
  return processorRef(dedupeStage, import.meta.url, "dedupeStage", options, stageOptions);
}
