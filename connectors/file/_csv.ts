// CSV options and row parsing with csv-parse (sync API), one line at a time so that a malformed
// line is isolated (and dead-lettered) instead of failing its whole chunk.
import { z } from "../../actors/_deps.ts";
import type { ParseCsv } from "./_deps.ts";

/** CSV dialect and mapping options. */
export interface CsvOptions {
  /** Line 1 of each file holds the column names. Default `true`. */
  header?: boolean;
  /** Field delimiter (one character). Default `","`. */
  delimiter?: string;
  /** Quote character. Default `'"'`. */
  quote?: string;
  /** Escape character inside quoted fields. Default `'"'`. */
  escape?: string;
  /** Column names; override the header. Without either, rows are arrays of strings. */
  columns?: string[];
  /** Convert numbers and booleans (csv-parse `cast`). Default `false`. */
  cast?: boolean;
  /** Trim whitespace around fields. Default `false`. */
  trim?: boolean;
  /** Accept rows whose field count differs from the columns. Default `false` (dead-lettered). */
  relaxColumnCount?: boolean;
}

/**
 * One character (a CSV delimiter, quote or escape): one code point, as zod 4's `length(1)` counted
 * (zod 3 counts UTF-16 units).
 */
export const csvCharSchema: z.ZodType<string> = z.string().refine(
  (s) => [...s].length === 1,
  "Expected exactly one character",
);

/** zod schema of {@linkcode CsvOptions}. */
export const csvOptionsSchema: z.ZodType<CsvOptions, z.ZodTypeDef, CsvOptions> = z.object({
  header: z.boolean().optional(),
  delimiter: csvCharSchema.optional(),
  quote: csvCharSchema.optional(),
  escape: csvCharSchema.optional(),
  columns: z.array(z.string().min(1)).min(1).optional(),
  cast: z.boolean().optional(),
  trim: z.boolean().optional(),
  relaxColumnCount: z.boolean().optional(),
}).strict();

/** A CSV row parser for one dialect. */
export interface CsvRowParser {
  /** The fields of `text`, or a "quote not closed" marker (the row goes on on the next line). */
  fields(text: string): string[] | unknown[] | "open";
  /** Column names of a header line. */
  header(text: string): string[];
}

/** Makes a row parser over csv-parse (see `loadParseCsv`); it throws a descriptive Error on a malformed row. */
export function csvRowParser(options: CsvOptions, parseCsv: ParseCsv): CsvRowParser {
  const base = {
    delimiter: options.delimiter ?? ",",
    quote: options.quote ?? '"',
    escape: options.escape ?? '"',
    trim: options.trim ?? false,
    relax_column_count: true,
  };
  const one = (text: string, cast: boolean): unknown[] | "open" => {
    try {
      const rows = parseCsv(text, { ...base, cast }) as unknown[][];
      if (rows.length !== 1) throw new Error(`expected one row, got ${rows.length}`);
      return rows[0]!;
    } catch (e) {
      if ((e as { code?: string }).code === "CSV_QUOTE_NOT_CLOSED") return "open";
      throw e;
    }
  };
  return {
    fields: (text) => one(text, options.cast ?? false),
    header(text) {
      const row = one(text, false);
      if (row === "open") throw new Error("header has an unclosed quote");
      return row.map(String);
    },
  };
}

/** Maps fields to an object by column name, or fails when the counts differ (unless relaxed). */
export function toRow(
  fields: unknown[],
  columns: string[] | undefined,
  relax: boolean,
): unknown[] | Record<string, unknown> {
  if (!columns) return fields;
  if (!relax && fields.length !== columns.length) {
    throw new Error(`expected ${columns.length} fields, got ${fields.length}`);
  }
  const row: Record<string, unknown> = {};
  columns.forEach((name, i) => {
    if (i < fields.length) row[name] = fields[i];
  });
  return row;
}
