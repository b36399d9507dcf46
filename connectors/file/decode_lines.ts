/**
 * `decodeLines`: turns file chunks into one record per line.
 *
 * @module
 */
import { z } from "../../actors/_deps.ts";
import { parseConfig } from "../../actors/_config.ts";
import type { StreamRecord } from "../../actors/record.ts";
import { defineProcessor, type ProcessorDefinition } from "../../actors/stage.ts";
import type { StageOptions, StageRef } from "../../actors/stage_ref.ts";
import { eachLine, lineRecords } from "./_lines.ts";
import type { FileChunk } from "./file_source.ts";

/** Options of {@linkcode decodeLines}. */
export interface DecodeLinesOptions {
  /** Drop empty lines. Default `false`. */
  skipEmpty?: boolean;
}

/**
 * The `decodeLines` processor definition (config {@linkcode DecodeLinesOptions}). Stateless.
 * Prefer the {@linkcode decodeLines} builder.
 *
 * @example
 * ```ts
 * import { decodeLinesStage } from "@sluice/sluice";
 * import assert from "node:assert/strict";
 *
 * assert.equal(decodeLinesStage.stateful, undefined);
 * ```
 */
export const decodeLinesStage: ProcessorDefinition<FileChunk, string, DecodeLinesOptions> =
  defineProcessor({
    name: "decodeLines",
    config: z.object({ skipEmpty: z.boolean().optional() }).strict(),
    open(config) {
      return {
        process(record: StreamRecord<FileChunk>): StreamRecord<string>[] {
          const out: StreamRecord<string>[] = [];
          const lineRecord = lineRecords(record);
          eachLine(record.value, (text, line) => {
            if (!config.skipEmpty || text !== "") out.push(lineRecord(text, line));
          });
          return out;
        },
      };
    },
  });

/**
 * Decodes file chunks (from `fileSource`) into one string record per line, without the line
 * terminator (`\n` or `\r\n`), with headers `{ file, line }` and the chunk's event time.
 * Stateless: run it with `parallelism: N` to decode chunks in parallel.
 *
 * @param options `skipEmpty` (default `false`).
 * @param stageOptions Stage options (name, parallelism, ...).
 * @returns A processor reference.
 * @throws {ConfigError} When the options are invalid.
 *
 * @example
 * ```ts
 * import { decodeLines } from "@sluice/sluice";
 * import assert from "node:assert/strict";
 *
 * assert.equal(decodeLines({}, { parallelism: 2 }).options?.parallelism, 2);
 * ```
 */
export function decodeLines(
  options: DecodeLinesOptions = {},
  stageOptions?: StageOptions,
): StageRef<FileChunk, string> {
  parseConfig(decodeLinesStage, stageOptions?.name ?? decodeLinesStage.name, options);
  const ref = { kind: "processor", module: import.meta.url, export: "decodeLinesStage" } as const;
  return { ...ref, config: options, ...(stageOptions ? { options: stageOptions } : {}) };
}
