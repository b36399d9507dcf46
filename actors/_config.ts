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

/** Joins issues into one line: `config.sizeMs: Too small: …; config.type: …`. */
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
 *   `Cannot configure stage "window": config.sizeMs: Too small: expected number to be >0`.
 */
export function parseConfig<C>(def: { config: ConfigSchema<C> }, stage: string, raw: unknown): C {
  // Parsed once: compiling zod's fast path for it would cost more than it saves.
  const result = def.config.safeParse(raw, { jitless: true });
  if (!result.success) {
    throw new ConfigError(
      `Cannot configure stage "${stage}": ${formatIssues("config", result.error.issues)}`,
      { site: { stage } },
    );
  }
  return result.data;
}

/**
 * Where in `value` structured clone would give up, and on what; undefined when it clones. Plain
 * objects and arrays are walked (a large config is not copied to find out); anything else is
 * tried on its own.
 */
export function unsendable(value: unknown): { path: PropertyKey[]; what: string } | undefined {
  const seen = new Set<object>();
  const walk = (
    v: unknown,
    path: PropertyKey[],
  ): { path: PropertyKey[]; what: string } | undefined => {
    if (typeof v === "function") return { path, what: "a function" };
    if (typeof v === "symbol") return { path, what: "a symbol" };
    if (typeof v !== "object" || v === null || seen.has(v)) return undefined;
    seen.add(v);
    const proto = Object.getPrototypeOf(v);
    if (Array.isArray(v)) {
      for (let i = 0; i < v.length; i++) {
        const found = walk(v[i], [...path, i]);
        if (found) return found;
      }
      return undefined;
    }
    if (proto === Object.prototype || proto === null) {
      for (const key of Object.keys(v)) {
        const found = walk((v as Record<string, unknown>)[key], [...path, key]);
        if (found) return found;
      }
      return undefined;
    }
    try {
      structuredClone(v);
      return undefined;
    } catch {
      const name = (v as { constructor?: { name?: string } }).constructor?.name;
      return { path, what: name ? `a ${name}` : "an object structured clone refuses" };
    }
  };
  return walk(value, []);
}
