/**
 * `validate`: checks each value against a schema exported by a module, dead-lettering failures
 * with every issue's path and message.
 *
 * @module
 */
import { z } from "../actors/_deps.ts";
import {
  defineProcessor,
  type ProcessorDefinition,
  type StagePermissions,
} from "../actors/stage.ts";
import type { StageOptions, StageRef } from "../actors/stage_ref.ts";
import { configError, processorRef } from "./_config.ts";
import { formatIssues } from "../actors/_config.ts";

/** Options of {@linkcode validate}: the stage options plus what to emit. */
export interface ValidateOptions extends StageOptions {
  /**
   * `"parsed"` emits the schema's output (defaults filled, coercions and transforms applied);
   * `"original"` emits the input value untouched. Default `"parsed"`.
   */
  output?: "parsed" | "original";
}

/** The part of the Standard Schema v1 interface (zod 4, valibot, arktype) that `validate` uses. */
interface StandardSchema {
  readonly "~standard": {
    validate(value: unknown): StandardResult | Promise<StandardResult>;
  };
}

type StandardResult =
  | { readonly value: unknown; readonly issues?: undefined }
  | {
    readonly issues: readonly {
      readonly message: string;
      readonly path?: readonly (PropertyKey | { readonly key: PropertyKey })[];
    }[];
  };

/** Config of the {@linkcode validateStage} definition. */
export interface ValidateConfig {
  /** Absolute URL of the module exporting the schema. */
  module: string;
  /** Name of the export holding the schema. */
  export: string;
  /** What to emit; see {@linkcode ValidateOptions}. Default `"parsed"`. */
  output?: "parsed" | "original";
}

const validateConfig: z.ZodType<ValidateConfig> = z.object({
  module: z.string().refine((s) => URL.canParse(s), "Expected an absolute module URL"),
  export: z.string().min(1),
  output: z.enum(["parsed", "original"]).optional(),
}).strict();

function isStandardSchema(value: unknown): value is StandardSchema {
  const std = (value as { "~standard"?: { validate?: unknown } } | null)?.["~standard"];
  return typeof std?.validate === "function";
}

/**
 * The `validate` processor definition. Config: `{ module, export, output? }`. `open` imports
 * `module` in the stage's worker and takes the Standard Schema (a zod schema, for example) named
 * `export`; a missing module or export fails `open` with a ConfigError. A value that fails
 * validation fails its record, which is dead-lettered with a reason such as
 * `Cannot validate record: value.total: Expected number, received string`.
 * Prefer the {@linkcode validate} builder.
 *
 * @example
 * ```ts
 * import { validateStage } from "@sluice/sluice";
 * import assert from "node:assert/strict";
 *
 * assert.equal(validateStage.name, "validate");
 * ```
 */
export const validateStage: ProcessorDefinition<unknown, unknown, ValidateConfig> = defineProcessor(
  {
    name: "validate",
    config: validateConfig,
    async open(config, ctx) {
      let mod: Record<string, unknown>;
      try {
        mod = await import(config.module);
      } catch (cause) {
        const error = configError(ctx.stage, "config.module", `cannot import ${config.module}`);
        throw Object.assign(error, { cause });
      }
      const schema = mod[config.export];
      if (!isStandardSchema(schema)) {
        throw configError(
          ctx.stage,
          "config.export",
          `"${config.export}" of ${config.module} is not a schema (zod or another Standard Schema)`,
        );
      }
      const original = config.output === "original";
      return {
        async process(record) {
          const result = await schema["~standard"].validate(record.value);
          if (result.issues) {
            const issues = result.issues.map((issue) => ({
              message: issue.message,
              path: (issue.path ?? []).map((p) => typeof p === "object" ? p.key : p),
            }));
            throw new TypeError(`Cannot validate record: ${formatIssues("value", issues)}`);
          }
          return original ? record : { ...record, value: result.value };
        },
      };
    },
  },
);

/**
 * Validates each value against a schema exported by a module. Schemas cannot be sent to a worker,
 * so the stage imports the module there and takes the named export: any Standard Schema works
 * (zod 4, valibot, arktype). Invalid records are dead-lettered with each issue's path and message.
 *
 * The module is imported inside the stage's worker, which by default gets read access to the
 * module's folder (or import access to its host); when the schema imports files elsewhere, pass
 * `options.permissions` to grant them.
 *
 * @param module The module's absolute URL, usually `new URL("./schemas.ts", import.meta.url)`.
 * @param exportName The export holding the schema.
 * @param options `output` (default `"parsed"`) and the stage options.
 * @returns A stage reference for a pipeline.
 * @throws {ConfigError} When `module` is not an absolute URL or `exportName` is empty.
 *
 * @example Validating orders with a zod schema from another module
 * ```ts
 * import { validate } from "@sluice/sluice";
 * import assert from "node:assert/strict";
 *
 * const ref = validate(new URL("./schemas.ts", import.meta.url), "OrderSchema");
 * assert.equal(ref.export, "validateStage");
 * assert.throws(() => validate("./schemas.ts", "OrderSchema"), /config\.module/);
 * ```
 */
export function validate<I = unknown, O = I>(
  module: URL | string,
  exportName: string,
  options: ValidateOptions = {},
): StageRef<I, O> {
  const { output, ...stageOptions } = options;
  const url = String(module);
  const config = output === undefined
    ? { module: url, export: exportName }
    : { module: url, export: exportName, output };
  const permissions = stageOptions.permissions ?? schemaPermissions(url);
  const opts = permissions ? { ...stageOptions, permissions } : stageOptions;
  const hasOptions = Object.keys(opts).length > 0;
  return processorRef(
    validateStage,
    import.meta.url,
    "validateStage",
    config,
    hasOptions ? opts : undefined,
  );
}

/** Read access to the schema module's folder (file URLs) or import from its host (http URLs). */
function schemaPermissions(url: string): StagePermissions | undefined {
  if (!URL.canParse(url)) return undefined;
  const u = new URL(url);
  if (u.protocol === "file:") return { read: [decodeURIComponent(new URL(".", u).pathname)] };
  if (u.protocol === "http:" || u.protocol === "https:") return { import: [u.host] };
  return undefined;
}
