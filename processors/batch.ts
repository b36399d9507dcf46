/**
 * `batch`: groups records into one record whose value is an array (N records or T ms).
 *
 * @module
 */
import { z } from "../actors/_deps.ts";
import type { StreamRecord } from "../actors/record.ts";
import { defineProcessor, type ProcessorDefinition, type StageContext } from "../actors/stage.ts";
import type { StageOptions, StageRef } from "../actors/stage_ref.ts";
import { processorRef } from "./_config.ts";
import { groupKey, keyOfGroup } from "./_fields.ts";

/** Options of {@linkcode batch}. */
export interface BatchOptions {
  /** Emit a batch once it holds this many records. Default 100. */
  size?: number;
  /** Emit a partial batch once its first record waited this long (ms). Default none. */
  timeoutMs?: number;
  /**
   * Batch each record key separately; the output keeps the key. Records without a key form one
   * group, apart from those keyed `""`. Default `false`.
   */
  perKey?: boolean;
}

const batchConfig: z.ZodType<BatchOptions> = z.object({
  size: z.number().int().safe().positive().optional(),
  timeoutMs: z.number().positive().finite().optional(),
  perKey: z.boolean().optional(),
}).strict();

/** Records held for one group and when the first arrived. */
interface Held {
  records: StreamRecord<unknown>[];
  since: number;
}

/**
 * The `batch` processor definition (config: {@linkcode BatchOptions}). Stateful: with `perKey`,
 * pending batches live in keyed state (`"batch"`); otherwise the one pending batch travels through
 * `snapshot`/`restore`. Prefer the {@linkcode batch} builder.
 *
 * @example
 * ```ts
 * import { batchStage } from "@sluice/sluice";
 * import assert from "node:assert/strict";
 *
 * assert.equal(batchStage.stateful, true);
 * ```
 */
export const batchStage: ProcessorDefinition<unknown, unknown, BatchOptions> = defineProcessor({
  name: "batch",
  config: batchConfig,
  stateful: true,
  open(config) {
    const size = config.size ?? 100;
    const timeoutMs = config.timeoutMs;
    let global: Held | undefined;

    const output = (held: Held, key: string | undefined): StreamRecord<unknown[]> => {
      const ts = held.records.reduce((max, r) => Math.max(max, r.ts), -Infinity);
      const value = held.records.map((r) => r.value);
      const k = key ?? held.records[0]?.key;
      const sameKey = k !== undefined && held.records.every((r) => r.key === k);
      return sameKey ? { key: k, value, ts } : { value, ts };
    };
    // Emits the batches that are full, timed out (`now` given) or all (`now` = Infinity).
    const release = (ctx: StageContext<unknown>, now: number | undefined): void => {
      const due = (h: Held) =>
        h.records.length >= size ||
        (now !== undefined &&
          (now === Infinity || (timeoutMs !== undefined && now - h.since >= timeoutMs)));
      if (!config.perKey) {
        if (global && global.records.length > 0 && due(global)) {
          ctx.emit(output(global, undefined));
          global = undefined;
        }
        return;
      }
      const state = ctx.keyed<Held>("batch");
      const done: string[] = [];
      for (const [group, held] of state.entries()) {
        if (!due(held)) continue;
        ctx.emit(output(held, keyOfGroup(group)));
        done.push(group);
      }
      for (const group of done) state.delete(group);
    };

    return {
      process(record, ctx) {
        if (!config.perKey) {
          global ??= { records: [], since: ctx.now() };
          global.records.push(record);
          if (global.records.length >= size) release(ctx, undefined);
          return;
        }
        const state = ctx.keyed<Held>("batch");
        const group = groupKey(record);
        const held = state.get(group) ?? { records: [], since: ctx.now() };
        held.records.push(record);
        if (held.records.length >= size) {
          state.delete(group);
          return output(held, record.key);
        }
        state.set(group, held);
      },
      onTick(now, ctx) {
        if (timeoutMs !== undefined) release(ctx, now);
      },
      flush(ctx) {
        release(ctx, Infinity);
      },
      snapshot() {
        return global;
      },
      restore(state) {
        global = state as Held | undefined;
      },
    };
  },
});

/**
 * Groups records into batches: emits one record whose value is the array of `size` values, or of
 * what arrived within `timeoutMs` of the batch's first record. The output's event time is the
 * latest in the batch; it keeps the key when all records share it (always with `perKey`). End of
 * input emits the partial batches.
 *
 * @param options Size, timeout and grouping; see {@linkcode BatchOptions}.
 * @param stageOptions Stage options; `tickMs` sets the `timeoutMs` resolution.
 * @returns A stage reference for a pipeline.
 * @throws {ConfigError} When the options are invalid (the message names the path).
 *
 * @example Bulk writes of 500 records or every 2 seconds
 * ```ts
 * import { batch } from "@sluice/sluice";
 * import assert from "node:assert/strict";
 *
 * const ref = batch({ size: 500, timeoutMs: 2000 });
 * assert.equal(ref.export, "batchStage");
 * assert.throws(() => batch({ size: 0 }), /config\.size: Number must be greater than/);
 * ```
 */
export function batch<I = unknown>(
  options: BatchOptions = {},
  stageOptions?: StageOptions,
): StageRef<I, I[]> {
  return processorRef(batchStage, import.meta.url, "batchStage", options, stageOptions);
}
