/**
 * `clean`: tidies object values: drops empty fields, trims strings, normalises chosen fields and
 * rejects records that end up empty or lack required fields.
 *
 * @module
 */
import { z } from "../actors/_deps.ts";
import { defineProcessor, type ProcessorDefinition } from "../actors/stage.ts";
import type { StageOptions, StageRef } from "../actors/stage_ref.ts";
import { fieldSchema, processorRef } from "./_config.ts";
import { getField, isPlainObject } from "./_fields.ts";

/** Options of {@linkcode clean}. Field lists take paths such as `"customer.email"`. */
export interface CleanOptions {
  /** Trim leading and trailing whitespace of every string, nested ones included. Default `true`. */
  trim?: boolean;
  /** Drop fields that are `null`, `undefined`, `""` (after trimming) or `{}`. Default `true`. */
  dropEmpty?: boolean;
  /** Fields whose inner whitespace runs collapse to one space. Default none. */
  collapseWhitespace?: string[];
  /** Fields to lower-case. Default none. */
  lowercase?: string[];
  /** Fields to upper-case. Default none. */
  uppercase?: string[];
  /** Fields that must be present and non-empty after cleaning. Default none. */
  required?: string[];
}

const cleanConfig: z.ZodType<CleanOptions> = z.object({
  trim: z.boolean().optional(),
  dropEmpty: z.boolean().optional(),
  collapseWhitespace: z.array(fieldSchema).optional(),
  lowercase: z.array(fieldSchema).optional(),
  uppercase: z.array(fieldSchema).optional(),
  required: z.array(fieldSchema).optional(),
}).strict();

function isEmpty(value: unknown): boolean {
  return value === null || value === undefined || value === "" ||
    (isPlainObject(value) && Object.keys(value).length === 0);
}

function cleanValue(value: unknown, trim: boolean, dropEmpty: boolean): unknown {
  if (typeof value === "string") return trim ? value.trim() : value;
  if (Array.isArray(value)) return value.map((v) => cleanValue(v, trim, dropEmpty));
  if (!isPlainObject(value)) return value;
  const out: Record<string, unknown> = {};
  for (const [field, raw] of Object.entries(value)) {
    const cleaned = cleanValue(raw, trim, dropEmpty);
    if (!(dropEmpty && isEmpty(cleaned))) out[field] = cleaned;
  }
  return out;
}

function updateString(value: unknown, path: string, fn: (s: string) => string): void {
  const parts = path.split(".");
  let target: unknown = value;
  for (const part of parts.slice(0, -1)) target = isPlainObject(target) ? target[part] : undefined;
  const last = parts[parts.length - 1]!;
  if (isPlainObject(target) && typeof target[last] === "string") {
    target[last] = fn(target[last] as string);
  }
}

/**
 * The `clean` processor definition (config: {@linkcode CleanOptions}). Object values are cleaned
 * recursively; a string value is trimmed; other values pass unchanged. A record that ends up empty
 * or lacks a required field fails (it is dead-lettered with the reason, never silently dropped).
 * Prefer the {@linkcode clean} builder.
 *
 * @example
 * ```ts
 * import { cleanStage } from "@sluice/sluice";
 * import assert from "node:assert/strict";
 *
 * assert.equal(cleanStage.name, "clean");
 * ```
 */
export const cleanStage: ProcessorDefinition<unknown, unknown, CleanOptions> = defineProcessor({
  name: "clean",
  config: cleanConfig,
  open(config) {
    const trim = config.trim ?? true;
    const dropEmpty = config.dropEmpty ?? true;
    const steps: [string, (s: string) => string][] = [
      ...(config.collapseWhitespace ?? []).map((f) => [f, (s: string) => s.replace(/\s+/g, " ")]),
      ...(config.lowercase ?? []).map((f) => [f, (s: string) => s.toLowerCase()]),
      ...(config.uppercase ?? []).map((f) => [f, (s: string) => s.toUpperCase()]),
    ] as [string, (s: string) => string][];
    const required = config.required ?? [];
    return {
      process(record) {
        const value = cleanValue(record.value, trim, dropEmpty);
        for (const [field, fn] of steps) updateString(value, field, fn);
        if (isEmpty(value)) {
          throw new TypeError("Cannot clean record: nothing is left after cleaning");
        }
        for (const field of required) {
          const v = getField(value, field);
          if (v === undefined || v === null || v === "") {
            throw new TypeError(
              `Cannot clean record: required field "${field}" is missing or empty`,
            );
          }
        }
        return { ...record, value };
      },
    };
  },
});

/**
 * Tidies object values: trims strings, drops empty fields, collapses whitespace and fixes the case
 * of chosen fields. Records left empty, or missing a `required` field, are dead-lettered.
 *
 * @param options What to clean; see {@linkcode CleanOptions}.
 * @param stageOptions Stage options.
 * @returns A stage reference for a pipeline.
 * @throws {ConfigError} When the options are invalid (the message names the path).
 *
 * @example Cleaning sign-ups
 * ```ts
 * import { clean } from "@sluice/sluice";
 * import assert from "node:assert/strict";
 *
 * const ref = clean({ lowercase: ["email"], collapseWhitespace: ["name"], required: ["email"] });
 * assert.equal(ref.export, "cleanStage");
 * assert.throws(() => clean({ required: "email" as unknown as string[] }), /config\.required/);
 * ```
 */
export function clean<I = Record<string, unknown>, O = I>(
  options: CleanOptions = {},
  stageOptions?: StageOptions,
): StageRef<I, O> {
  return processorRef(cleanStage, import.meta.url, "cleanStage", options, stageOptions);
}
