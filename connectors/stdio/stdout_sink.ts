/**
 * `stdoutSink`: writes records to standard output as lines or NDJSON.
 *
 * @module
 */
import { z } from "../../actors/_deps.ts";
import { parseConfig } from "../../actors/_config.ts";
import type { StreamRecord } from "../../actors/record.ts";
import { defineSink, type SinkDefinition } from "../../actors/stage.ts";
import type { StageOptions, StageRef } from "../../actors/stage_ref.ts";

/** Options of {@linkcode stdoutSink}. */
export interface StdoutSinkOptions {
  /**
   * `ndjson`: `JSON.stringify(value)` per line; `lines`: strings as they are, other values as
   * JSON; `records`: the whole record (key, value, ts, headers) as JSON. Default `"ndjson"`.
   */
  format?: "lines" | "ndjson" | "records";
}

const stdoutConfig: z.ZodType<StdoutSinkOptions> = z.object({
  format: z.enum(["lines", "ndjson", "records"]).optional(),
}).strict();

/**
 * The `stdout` sink definition (config {@linkcode StdoutSinkOptions}). Prefer the
 * {@linkcode stdoutSink} builder.
 *
 * @example
 * ```ts
 * import { stdoutSinkStage } from "@sluice/sluice";
 * import assert from "node:assert/strict";
 *
 * assert.equal(stdoutSinkStage.name, "stdout");
 * ```
 */
export const stdoutSinkStage: SinkDefinition<unknown, StdoutSinkOptions> = defineSink({
  name: "stdout",
  config: stdoutConfig,
  open(config) {
    const encoder = new TextEncoder();
    const format = config.format ?? "ndjson";
    const line = (r: StreamRecord<unknown>): string =>
      format === "records"
        ? JSON.stringify(r)
        : format === "lines" && typeof r.value === "string"
        ? r.value
        : JSON.stringify(r.value ?? null);
    return {
      async write(records: StreamRecord<unknown>[]) {
        const bytes = encoder.encode(records.map(line).join("\n") + "\n");
        for (let at = 0; at < bytes.length;) at += await Deno.stdout.write(bytes.subarray(at));
      },
    };
  },
});

/**
 * Writes each record to standard output, one line per record; `write` resolves once the batch
 * was handed to the OS (a full pipe blocks it, which backs the pipeline up). Permissions: none
 * (a worker shares the process's stdout).
 *
 * @param options `format` (default `"ndjson"`).
 * @param stageOptions Stage options.
 * @returns A sink reference.
 * @throws {ConfigError} When the options are invalid.
 *
 * @example
 * ```ts
 * import { stdoutSink } from "@sluice/sluice";
 * import assert from "node:assert/strict";
 *
 * assert.equal(stdoutSink({ format: "lines" }).kind, "sink");
 * ```
 */
export function stdoutSink<T = unknown>(
  options: StdoutSinkOptions = {},
  stageOptions?: StageOptions,
): StageRef<T, never> {
  parseConfig(stdoutSinkStage, stageOptions?.name ?? stdoutSinkStage.name, options);
  const ref = { kind: "sink", module: import.meta.url, export: "stdoutSinkStage" } as const;
  return { ...ref, config: options, ...(stageOptions ? { options: stageOptions } : {}) };
}
