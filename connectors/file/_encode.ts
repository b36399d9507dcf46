// Encoding of sink batches: NDJSON, lines or CSV text, optionally as one gzip member per batch
// (concatenated members form a valid gzip file, so every acknowledged batch is readable at once).
import type { StreamRecord } from "../../actors/record.ts";
import { loadStringifyCsv, type StringifyCsv } from "./_deps.ts";

/** CSV output options. */
export interface CsvWriteOptions {
  /** Column order; default: the keys of the first object written. */
  columns?: string[];
  /** Write a header line at the start of each file. Default `true`. */
  header?: boolean;
  /** Field delimiter. Default `","`. */
  delimiter?: string;
}

const encoder = new TextEncoder();

/** Encodes a batch; `fresh` marks the start of a file (CSV header). */
export class BatchEncoder {
  readonly #format: "ndjson" | "csv" | "lines";
  readonly #csv: CsvWriteOptions;
  #columns: string[] | undefined;
  #stringify: StringifyCsv | undefined;

  constructor(format: "ndjson" | "csv" | "lines", csv: CsvWriteOptions = {}) {
    this.#format = format;
    this.#csv = csv;
    this.#columns = csv.columns;
  }

  /** Loads what the format needs (csv-stringify for CSV); call once before `text`. */
  async load(): Promise<this> {
    if (this.#format === "csv") this.#stringify ??= await loadStringifyCsv();
    return this;
  }

  /** The batch as text. */
  text(records: StreamRecord<unknown>[], fresh: boolean): string {
    if (this.#format === "ndjson") {
      return records.map((r) => JSON.stringify(r.value ?? null)).join("\n") + "\n";
    }
    if (this.#format === "lines") {
      return records.map((r) => typeof r.value === "string" ? r.value : JSON.stringify(r.value))
        .join("\n") + "\n";
    }
    if (!this.#columns) {
      const first = records.find((r) => r.value !== null && typeof r.value === "object");
      if (first && !Array.isArray(first.value)) {
        this.#columns = Object.keys(first.value as Record<string, unknown>);
      }
    }
    const rows = records.map((r) => {
      const v = r.value;
      if (Array.isArray(v) || this.#columns === undefined) return Array.isArray(v) ? v : [v];
      return this.#columns.map((c) => (v as Record<string, unknown> | null)?.[c] ?? null);
    });
    const header = fresh && (this.#csv.header ?? true) && this.#columns !== undefined;
    if (!this.#stringify) throw new TypeError("Cannot encode CSV: call load() first");
    return this.#stringify(header ? [this.#columns!, ...rows] : rows, {
      delimiter: this.#csv.delimiter ?? ",",
      cast: { boolean: (b: boolean) => String(b) },
    });
  }
}

/** UTF-8 bytes, gzipped as one member when asked. */
export async function toBytes(text: string, gzip: boolean): Promise<Uint8Array> {
  const bytes = encoder.encode(text);
  if (!gzip) return bytes;
  const stream = new Blob([bytes]).stream().pipeThrough(new CompressionStream("gzip"));
  return new Uint8Array(await new Response(stream).arrayBuffer());
}

/**
 * Writes all of `bytes`. Small writes to a regular file go synchronously: into the page cache
 * they take microseconds, less than the hand-off of an async file op. Anything that can block
 * (a FIFO, a terminal, a large write) goes through the async op.
 */
export async function writeAll(
  file: Deno.FsFile,
  bytes: Uint8Array,
  regular = false,
): Promise<void> {
  if (regular && bytes.length <= SYNC_WRITE_BYTES) {
    for (let at = 0; at < bytes.length;) at += file.writeSync(bytes.subarray(at));
    return;
  }
  for (let at = 0; at < bytes.length;) at += await file.write(bytes.subarray(at));
}

/** Writes up to this size are made with `writeSync`. */
const SYNC_WRITE_BYTES = 256 * 1024;
