// Build-time config validation shared by every processor builder: parse with the definition's zod
// schema at once (actors/_config.ts turns failures into a one-line ConfigError naming the path).
import { z } from "../actors/_deps.ts";
import { ConfigError } from "../actors/errors.ts";
import { parseConfig } from "../actors/_config.ts";
import type { InlineFn } from "../actors/inline_fn.ts";
import type { ConfigSchema } from "../actors/stage.ts";
import type { JsonValue } from "./transform.ts";
import { isPlainObject } from "./_fields.ts";
import type { StageOptions, StageRef } from "../actors/stage_ref.ts";

/**
 * Validates `config` against `definition` right away (build time) and returns the reference the
 * runtime imports in the worker. The raw config is kept: the worker validates it again.
 */
export function processorRef<I, O>(
  definition: { readonly name: string; readonly config: ConfigSchema<unknown> },
  module: string,
  exportName: string,
  config: unknown,
  options?: StageOptions,
): StageRef<I, O> {
  parseConfig(definition, options?.name ?? definition.name, config);
  return options === undefined
    ? { kind: "processor", module, export: exportName, config }
    : { kind: "processor", module, export: exportName, config, options };
}

/** Builds a ConfigError for a mistake found outside the zod schema (e.g. a non-function). */
export function configError(stageName: string, path: string, message: string): ConfigError {
  return new ConfigError(`Cannot configure stage "${stageName}": ${path}: ${message}`);
}

/** Wire form of an inline function ({@linkcode InlineFn}). */
export const inlineFnSchema: z.ZodType<InlineFn> = z.object({ fn: z.string().min(1) }).strict();

/** A non-empty field path in a record's value: `"price"` or `"customer.id"`. */
export const fieldSchema: z.ZodString = z.string().min(1);

/**
 * A JSON value: a string, a finite number, a boolean, null, or an array or plain object of them
 * (anything else, a `Date` or a class instance, is refused rather than copied field by field).
 */
export const jsonSchema: z.ZodType<JsonValue> = z.lazy(() =>
  z.union([
    z.string(),
    z.number().finite(),
    z.boolean(),
    z.null(),
    z.array(jsonSchema),
    z.custom<{ [key: string]: JsonValue }>(
      (v) => isPlainObject(v) && Object.getOwnPropertySymbols(v).length === 0,
      "Expected a JSON object",
    )
      .pipe(z.record(z.string(), jsonSchema)),
  ])
);
