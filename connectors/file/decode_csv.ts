/**
 * `decodeCsv`: turns file chunks into one record per CSV row, parsed with csv-parse.
 *
 * @module
 */
import { parseConfig } from "../../actors/_config.ts";
import type { StreamRecord } from "../../actors/record.ts";
import { defineProcessor, type ProcessorDefinition } from "../../actors/stage.ts";
import type { StageOptions, StageRef } from "../../actors/stage_ref.ts";
import { type CsvOptions, csvOptionsSchema, csvRowParser, toRow } from "./_csv.ts";
import { loadParseCsv } from "./_deps.ts";
import { chunkLines, lineError, lineRecords } from "./_lines.ts";
import type { FileChunk } from "./file_source.ts";

export type { CsvOptions };

/** A decoded CSV row: an object by column name, or the fields when there are no columns. */
export type CsvRow = Record<string, unknown> | unknown[];

/**
 * The `decodeCsv` processor definition (config {@linkcode CsvOptions}). Stateless. Prefer the
 * {@linkcode decodeCsv} builder.
 *
 * @example
 * ```ts
 * import { decodeCsvStage } from "@sluice/sluice";
 * import assert from "node:assert/strict";
 *
 * assert.equal(decodeCsvStage.name, "decodeCsv");
 * ```
 */
export const decodeCsvStage: ProcessorDefinition<FileChunk, CsvRow, CsvOptions> = defineProcessor({
  name: "decodeCsv",
  config: csvOptionsSchema,
  async open(config) {
    const parseCsv = await loadParseCsv();
    const parsers = new Map<string, ReturnType<typeof csvRowParser>>();
    const headers = new Map<string, string[]>();
    return {
      process(record: StreamRecord<FileChunk>, ctx): StreamRecord<CsvRow>[] {
        const chunk = record.value;
        const options = { ...chunk.csv, ...config };
        const dialect = JSON.stringify([options.delimiter, options.quote, options.escape]);
        let parser = parsers.get(dialect + options.trim + options.cast);
        if (!parser) {
          parser = csvRowParser(options, parseCsv);
          parsers.set(dialect + options.trim + options.cast, parser);
        }
        let columns = options.columns;
        if (!columns && chunk.header !== undefined) {
          columns = headers.get(chunk.header) ?? parser.header(chunk.header);
          headers.set(chunk.header, columns);
        }
        const out: StreamRecord<CsvRow>[] = [];
        const lines = chunkLines(chunk);
        const lineRecord = lineRecords(record);
        for (let i = 0; i < lines.length; i++) {
          const { line } = lines[i]!;
          let text = lines[i]!.text;
          if (text === "") continue;
          try {
            let fields = parser.fields(text);
            // A quoted field may hold newlines: extend the row over the next lines of the chunk.
            while (fields === "open" && i + 1 < lines.length) {
              text += "\n" + lines[++i]!.text;
              fields = parser.fields(text);
            }
            if (fields === "open") throw new Error("quote not closed");
            const row = toRow(fields, columns, options.relaxColumnCount ?? false);
            out.push(lineRecord(row, line));
          } catch (e) {
            ctx.deadLetter(lineRecord(text, line), lineError("CSV", chunk.file, line, e));
          }
        }
        return out;
      },
    };
  },
});

/**
 * Decodes file chunks (from `fileSource` with format `csv`) into one record per row, using
 * csv-parse. Column names come from `columns`, else from the file's header line (which
 * `fileSource` reads and attaches to every chunk, so any instance can decode any chunk); without
 * either, rows are arrays. Options given here override the source's `csv` options. A malformed
 * row (bad quoting, wrong field count) is dead-lettered with `{ file, line }`; quoted fields may
 * span lines within a chunk. Stateless: run it with `parallelism: N`.
 *
 * @param options See {@linkcode CsvOptions} (all optional).
 * @param stageOptions Stage options (name, parallelism, ...).
 * @returns A processor reference.
 * @throws {ConfigError} When the options are invalid.
 *
 * @example
 * ```ts
 * import { decodeCsv } from "@sluice/sluice";
 * import assert from "node:assert/strict";
 *
 * assert.equal(decodeCsv({ delimiter: ";", cast: true }).export, "decodeCsvStage");
 * assert.throws(() => decodeCsv({ delimiter: ";;" }), /config\.delimiter/);
 * ```
 */
export function decodeCsv<T extends CsvRow = Record<string, unknown>>(
  options: CsvOptions = {},
  stageOptions?: StageOptions,
): StageRef<FileChunk, T> {
  parseConfig(decodeCsvStage, stageOptions?.name ?? decodeCsvStage.name, options);
  const ref = { kind: "processor", module: import.meta.url, export: "decodeCsvStage" } as const;
  return { ...ref, config: options, ...(stageOptions ? { options: stageOptions } : {}) };
}
