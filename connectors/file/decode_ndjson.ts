/**
 * `decodeNdjson`: turns file chunks into one record per JSON line.
 *
 * @module
 */
import { z } from "../../actors/_deps.ts";
import { parseConfig } from "../../actors/_config.ts";
import type { StreamRecord } from "../../actors/record.ts";
import { defineProcessor, type ProcessorDefinition } from "../../actors/stage.ts";
import type { StageOptions, StageRef } from "../../actors/stage_ref.ts";
import { eachLine, eventTime, lineError, lineRecords } from "./_lines.ts";
import type { FileChunk } from "./file_source.ts";

/** Options of {@linkcode decodeNdjson}. */
export interface DecodeNdjsonOptions {
  /** Take event time from this field of each object (epoch ms or a date string). Default: the chunk's (0: files carry no event time). */
  tsField?: string;
  /**
   * Give each record the headers `{ file, line }`. Default `true`. Turn off when nothing
   * downstream reads them: a decoder then builds, and its channel copies, less per line. Dead
   * letters keep them either way.
   */
  lineHeaders?: boolean;
}

/**
 * The `decodeNdjson` processor definition (config {@linkcode DecodeNdjsonOptions}). Stateless.
 * Prefer the {@linkcode decodeNdjson} builder.
 *
 * @example
 * ```ts
 * import { decodeNdjsonStage } from "@sluice/sluice";
 * import assert from "node:assert/strict";
 *
 * assert.equal(decodeNdjsonStage.name, "decodeNdjson");
 * ```
 */
export const decodeNdjsonStage: ProcessorDefinition<FileChunk, unknown, DecodeNdjsonOptions> =
  defineProcessor({
    name: "decodeNdjson",
    config: z.object({
      tsField: z.string().min(1).optional(),
      lineHeaders: z.boolean().optional(),
    }).strict(),
    open(config) {
      return {
        process(record: StreamRecord<FileChunk>, ctx): StreamRecord<unknown>[] {
          const out: StreamRecord<unknown>[] = [];
          const { file } = record.value;
          const tsField = config.tsField;
          const headers = config.lineHeaders ?? true;
          const lineRecord = lineRecords(record, headers);
          // Dead letters say where the line was, whatever the records carry.
          const deadRecord = headers ? lineRecord : lineRecords(record);
          eachLine(record.value, (text, line) => {
            if (text.length === 0 || text.trim() === "") return;
            try {
              const value: unknown = JSON.parse(text);
              const r = lineRecord(value, line);
              if (tsField) r.ts = eventTime(value, tsField);
              out.push(r);
            } catch (e) {
              ctx.deadLetter(deadRecord(text, line), lineError("NDJSON", file, line, e));
            }
          });
          return out;
        },
      };
    },
  });

/**
 * Decodes file chunks (from `fileSource`) into one record per JSON line, with headers
 * `{ file, line }` (unless `lineHeaders: false`). Blank lines are skipped. A line that is not
 * valid JSON (or lacks a valid `tsField`) goes to the dead-letter sink as its raw text, with the
 * file and line in its headers and reason — it never stops the stream. Stateless: run it with
 * `parallelism: N`.
 *
 * @param options `tsField` (default: none, event time is the read time) and `lineHeaders`
 *   (default `true`).
 * @param stageOptions Stage options (name, parallelism, ...).
 * @returns A processor reference.
 * @throws {ConfigError} When the options are invalid.
 *
 * @example
 * ```ts
 * import { decodeNdjson } from "@sluice/sluice";
 * import assert from "node:assert/strict";
 *
 * assert.equal(decodeNdjson({ tsField: "at" }).export, "decodeNdjsonStage");
 * ```
 */
export function decodeNdjson<T = unknown>(
  options: DecodeNdjsonOptions = {},
  stageOptions?: StageOptions,
): StageRef<FileChunk, T> {
  parseConfig(decodeNdjsonStage, stageOptions?.name ?? decodeNdjsonStage.name, options);
  const ref = { kind: "processor", module: import.meta.url, export: "decodeNdjsonStage" } as const;
  return { ...ref, config: options, ...(stageOptions ? { options: stageOptions } : {}) };
}
