// Config validation with one-line errors that name the zod path.
import type { ConfigSchema } from "./stage.ts";
import { ConfigError } from "./errors.ts";

/** Formats the first zod issue as `config.a.b: message`. */
export function describeZodError(
  error: { issues: readonly { path: readonly PropertyKey[]; message: string }[] },
  root = "config",
): string {
  const issue = error.issues[0];
  if (!issue) return `${root}: invalid`;
  const path = issue.path.map((p) => typeof p === "number" ? `[${p}]` : `.${String(p)}`).join("");
  const more = error.issues.length > 1 ? ` (and ${error.issues.length - 1} more)` : "";
  return `${root}${path}: ${issue.message}${more}`;
}

/**
 * Validates a stage config with its definition's schema.
 *
 * @throws {ConfigError} naming the stage and the zod path, e.g.
 *   `Cannot configure stage "window": config.sizeMs: Too small: expected number to be >0`.
 */
export function parseConfig<C>(def: { config: ConfigSchema<C> }, stage: string, raw: unknown): C {
  const result = def.config.safeParse(raw);
  if (!result.success) {
    throw new ConfigError(`Cannot configure stage "${stage}": ${describeZodError(result.error)}`, {
      site: { stage },
    });
  }
  return result.data;
}
