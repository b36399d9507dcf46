// zod schemas of pipeline and stage options: a typo or a wrong type fails at build time with the
// path, like a stage config does.
import { z } from "./_deps.ts";
import { ConfigError } from "./errors.ts";
import { formatIssues } from "./_config.ts";

const list = z.union([z.boolean(), z.array(z.string())]);

const permissions = z.union([
  z.literal("none"),
  z.literal("inherit"),
  z.object({
    net: list.optional(),
    read: list.optional(),
    write: list.optional(),
    env: list.optional(),
    run: list.optional(),
    sys: list.optional(),
    ffi: list.optional(),
    import: list.optional(),
  }).strict(),
]);

const positive = z.number().positive().finite();

/** Where dead letters go: a sink stage reference, or an object with `write(entries)`. */
const deadLetterTarget = z.custom<object>(
  (v) =>
    typeof v === "object" && v !== null &&
    ("kind" in v || typeof (v as { write?: unknown }).write === "function"),
  "must be a sink stage or a DeadLetterSink (an object with write(entries))",
);

/** Per-stage options (the `StageOptions` type in stage_ref.ts mirrors it). */
export const stageOptionsSchema = z.object({
  name: z.string().regex(/^[A-Za-z][\w.-]*$/, "must be an identifier").optional(),
  parallelism: z.number().int().safe().positive().optional(),
  capacity: z.number().int().safe().positive().optional(),
  batchSize: z.number().int().safe().positive().optional(),
  lingerMs: z.number().nonnegative().finite().optional(),
  strategy: z.enum(["one_for_one", "rest_for_one", "one_for_all"]).optional(),
  maxRestarts: z.number().int().safe().nonnegative().optional(),
  withinMs: positive.optional(),
  maxRetries: z.number().int().safe().nonnegative().optional(),
  fuse: z.boolean().optional(),
  permissions: permissions.optional(),
  tickMs: positive.optional(),
  idleTimeoutMs: positive.optional(),
  deadLetter: deadLetterTarget.optional(),
  watermarks: z.object({ outOfOrdernessMs: z.number().nonnegative().finite() }).strict().optional(),
  align: z.object({ maxDriftMs: z.number().nonnegative().finite() }).strict().optional(),
}).strict();

/** Pipeline options. */
export const pipelineOptionsSchema = z.object({
  name: z.string().min(1).optional(),
  mode: z.enum(["workers", "inline"]).optional(),
  partitions: z.number().int().safe().positive().max(65_536).optional(),
  heartbeatMs: positive.optional(),
  startTimeoutMs: positive.optional(),
  stopTimeoutMs: positive.optional(),
  deadLetter: deadLetterTarget.optional(),
  defaults: stageOptionsSchema.optional(),
  outOfOrdernessMs: z.number().nonnegative().finite().optional(),
  signals: z.boolean().optional(),
  state: z.custom<object>(
    (v) =>
      typeof (v as { getMany?: unknown })?.getMany === "function" &&
      typeof (v as { setMany?: unknown })?.setMany === "function",
    "must be a state backend (getMany and setMany)",
  ).optional(),
  checkpointMs: positive.optional(),
  restoreState: z.boolean().optional(),
}).strict();

/** Validates options, throwing a ConfigError naming the path (`options.parallelism: …`). */
export function checkOptions(schema: z.ZodType, value: unknown, where: string): void {
  const result = schema.safeParse(value ?? {});
  if (!result.success) {
    throw new ConfigError(`${where}: ${formatIssues("options", result.error.issues)}`);
  }
}
