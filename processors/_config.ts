// Build-time config validation shared by every processor builder: parse with the definition's zod
// schema at once and turn the first failure into a one-line ConfigError naming the zod path.
import { z } from "../actors/_deps.ts";
import { ConfigError } from "../actors/errors.ts";
import type { InlineFn } from "../actors/inline_fn.ts";
import type { ConfigSchema } from "../actors/stage.ts";
import type { StageOptions, StageRef } from "../actors/stage_ref.ts";

/** A zod issue, reduced to what the message needs. */
interface Issue {
  readonly path: readonly PropertyKey[];
  readonly message: string;
}

/** Formats a zod path as `config.by[0].field`. */
export function formatPath(root: string, path: readonly PropertyKey[]): string {
  let out = root;
  for (const part of path) {
    out += typeof part === "number" ? `[${part}]` : `.${String(part)}`;
  }
  return out;
}

/** Joins zod issues into one line: `config.sizeMs: Too small: ...; config.type: ...`. */
export function formatIssues(root: string, issues: readonly Issue[]): string {
  return issues
    .map((issue) => `${formatPath(root, issue.path)}: ${issue.message.replace(/\s+/g, " ")}`)
    .join("; ");
}

/**
 * Parses `raw` with `schema`, throwing a {@linkcode ConfigError} such as
 * `Cannot configure stage "window": config.sizeMs: Too small: expected number to be >0`.
 */
export function parseConfig<C>(stageName: string, schema: ConfigSchema<C>, raw: unknown): C {
  const result = schema.safeParse(raw);
  if (result.success) return result.data;
  throw new ConfigError(
    `Cannot configure stage "${stageName}": ${formatIssues("config", result.error.issues)}`,
    { cause: result.error, site: { stage: stageName } },
  );
}

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
  parseConfig(options?.name ?? definition.name, definition.config, config);
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
