// Config validation with one-line errors that name the zod path.
import type { ConfigSchema } from "./stage.ts";
import { ConfigError } from "./errors.ts";

/** A validation issue, reduced to what a message needs. */
interface Issue {
  readonly path: readonly PropertyKey[];
  readonly message: string;
}

/** Formats a path as `config.by[0].field`. */
export function formatPath(root: string, path: readonly PropertyKey[]): string {
  let out = root;
  for (const part of path) out += typeof part === "number" ? `[${part}]` : `.${String(part)}`;
  return out;
}

/** Joins issues into one line: `config.sizeMs: Number must be greater than 0; config.type: …`. */
export function formatIssues(root: string, issues: readonly Issue[]): string {
  if (issues.length === 0) return `${root}: invalid`;
  return issues
    .map((issue) => `${formatPath(root, issue.path)}: ${issue.message.replace(/\s+/g, " ")}`)
    .join("; ");
}

/**
 * Validates a stage config with its definition's schema.
 *
 * @throws {ConfigError} naming the stage and the zod path, e.g.
 *   `Cannot configure stage "window": config.sizeMs: Number must be greater than 0`.
 */
export function parseConfig<C>(def: { config: ConfigSchema<C> }, stage: string, raw: unknown): C {
  // Parsed once: compiling zod 4's fast path for it would cost more than it saves (zod 3 has
  // none, and ignores the option).
  const result = def.config.safeParse(raw, { jitless: true });
  if (!result.success) {
    throw new ConfigError(
      `Cannot configure stage "${stage}": ${formatIssues("config", result.error.issues)}`,
      { site: { stage } },
    );
  }
  return result.data;
}
