/**
 * `transform`: declarative field mapping (rename, defaults, convert, set, pick, drop).
 *
 * @module
 */
import { z } from "../actors/_deps.ts";
import { defineProcessor, type ProcessorDefinition } from "../actors/stage.ts";
import type { StageOptions, StageRef } from "../actors/stage_ref.ts";
import { fieldSchema, jsonSchema, processorRef } from "./_config.ts";
import { isPlainObject } from "./_fields.ts";
import { convertValue } from "./_convert.ts";

/** Target types of `convert`: `"date"` parses to milliseconds since the epoch. */
export type Conversion = "number" | "string" | "boolean" | "date";

/** A JSON value, usable as a constant in `set` and `defaults`. */
export type JsonValue = string | number | boolean | null | JsonValue[] | {
  [key: string]: JsonValue;
};

/**
 * Options of {@linkcode transform}. Top-level fields of object values only; the steps apply in
 * this order: `rename`, `defaults`, `convert`, `set`, `pick`, `drop`.
 */
export interface TransformOptions {
  /** `{ from: to }`: moves field `from` to `to` (missing `from` is ignored). Default none. */
  rename?: Record<string, string>;
  /** Values for fields that are missing, `null` or `undefined`. Default none. */
  defaults?: Record<string, JsonValue>;
  /**
   * `{ field: type }`: converts present, non-null fields. A value that cannot be converted fails
   * the record (retried, then dead-lettered with the reason). Default none.
   */
  convert?: Record<string, Conversion>;
  /** Constants written over whatever is there. Default none. */
  set?: Record<string, JsonValue>;
  /** Keep only these fields. Default all. */
  pick?: string[];
  /** Remove these fields. Default none. */
  drop?: string[];
}

const transformConfig: z.ZodType<TransformOptions> = z.object({
  rename: z.record(fieldSchema, fieldSchema).optional(),
  defaults: z.record(fieldSchema, jsonSchema).optional(),
  convert: z.record(fieldSchema, z.enum(["number", "string", "boolean", "date"])).optional(),
  set: z.record(fieldSchema, jsonSchema).optional(),
  pick: z.array(fieldSchema).optional(),
  drop: z.array(fieldSchema).optional(),
}).strict();

/**
 * The `transform` processor definition (config: {@linkcode TransformOptions}). A value that is
 * not a plain object fails the record. Prefer the {@linkcode transform} builder.
 *
 * @example
 * ```ts
 * import { transformStage } from "@sluice/sluice";
 * import assert from "node:assert/strict";
 *
 * assert.equal(transformStage.name, "transform");
 * ```
 */
export const transformStage: ProcessorDefinition<unknown, unknown, TransformOptions> =
  defineProcessor({
    name: "transform",
    config: transformConfig,
    open(config) {
      const renames = Object.entries(config.rename ?? {});
      const defaults = Object.entries(config.defaults ?? {});
      const converts = Object.entries(config.convert ?? {});
      const sets = Object.entries(config.set ?? {});
      const pick = config.pick;
      const drop = config.drop ?? [];
      return {
        process(record) {
          if (!isPlainObject(record.value)) {
            const got = Array.isArray(record.value) ? "an array" : typeof record.value;
            throw new TypeError(`Cannot transform record: value is ${got}, not an object`);
          }
          let out: Record<string, unknown> = { ...record.value };
          for (const [from, to] of renames) {
            if (!(from in out)) continue;
            const moved = out[from];
            delete out[from];
            out[to] = moved;
          }
          for (const [field, value] of defaults) {
            if (out[field] === undefined || out[field] === null) {
              out[field] = structuredClone(value);
            }
          }
          for (const [field, type] of converts) {
            const value = out[field];
            if (value !== undefined && value !== null) {
              out[field] = convertValue(field, value, type);
            }
          }
          for (const [field, value] of sets) out[field] = structuredClone(value);
          if (pick) {
            const picked: Record<string, unknown> = {};
            for (const field of pick) if (field in out) picked[field] = out[field];
            out = picked;
          }
          for (const field of drop) delete out[field];
          return { ...record, value: out };
        },
      };
    },
  });

/**
 * Reshapes object values declaratively, without code: rename, fill defaults, convert types, set
 * constants, pick and drop fields (in that order).
 *
 * @param options What to do; see {@linkcode TransformOptions}.
 * @param stageOptions Stage options.
 * @returns A stage reference for a pipeline.
 * @throws {ConfigError} When the options are invalid (the message names the path).
 *
 * @example Normalising an order
 * ```ts
 * import { transform } from "@sluice/sluice";
 * import assert from "node:assert/strict";
 *
 * const ref = transform({
 *   rename: { order_id: "id" },
 *   convert: { total: "number", placedAt: "date" },
 *   defaults: { currency: "EUR" },
 *   drop: ["internal"],
 * });
 * assert.equal(ref.export, "transformStage");
 * assert.throws(
 *   () => transform({ convert: { total: "float" as "number" } }),
 *   /config\.convert\.total/,
 * );
 * ```
 */
export function transform<I = Record<string, unknown>, O = Record<string, unknown>>(
  options: TransformOptions,
  stageOptions?: StageOptions,
): StageRef<I, O> {
  return processorRef(transformStage, import.meta.url, "transformStage", options, stageOptions);
}
