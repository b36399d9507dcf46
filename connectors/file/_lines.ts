// Splitting a chunk record into numbered lines, and the records decoders emit for them.
import type { StreamRecord } from "../../actors/record.ts";
import type { FileChunk } from "./file_source.ts";

const decoder = new TextDecoder();

/**
 * Calls `fn` for each line of a chunk (no line terminator; 1-based line number in the file); a
 * final newline does not start an empty line. No intermediate arrays: this is a decoder's hot loop.
 */
export function eachLine(chunk: FileChunk, fn: (text: string, line: number) => void): void {
  const text = decoder.decode(chunk.bytes);
  let line = chunk.line;
  let start = 0;
  while (start < text.length) {
    let end = text.indexOf("\n", start);
    if (end === -1) end = text.length;
    const stop = end > start && text.charCodeAt(end - 1) === 13 ? end - 1 : end; // "\r\n"
    fn(text.slice(start, stop), line++);
    start = end + 1;
  }
}

/** One line of a chunk: its text (no line terminator) and its 1-based number in the file. */
export interface NumberedLine {
  text: string;
  line: number;
}

/** The lines of a chunk as an array, for decoders that look ahead (CSV rows spanning lines). */
export function chunkLines(chunk: FileChunk): NumberedLine[] {
  const lines: NumberedLine[] = [];
  eachLine(chunk, (text, line) => lines.push({ text, line }));
  return lines;
}

/**
 * Makes the records for the lines of one chunk: the chunk's key and event time, headers
 * `{ file, line }` (plus the chunk's others but `offset`). What depends on the chunk only is
 * worked out once, not per line. Without `headers`, records carry key, value and time only.
 */
export function lineRecords(
  source: StreamRecord<FileChunk>,
  headers = true,
): <T>(value: T, line: number) => StreamRecord<T> {
  const { key, ts } = source;
  if (!headers) {
    return <T>(value: T): StreamRecord<T> => key === undefined ? { value, ts } : { key, value, ts };
  }
  const file = source.value.file;
  const extra = source.headers;
  let base: Record<string, string> | undefined;
  if (extra && Object.keys(extra).some((k) => k !== "file" && k !== "line" && k !== "offset")) {
    base = { ...extra };
    delete base.offset;
  }
  return <T>(value: T, line: number): StreamRecord<T> => {
    const headers = base ? { ...base, file, line: String(line) } : { file, line: String(line) };
    return key === undefined ? { value, ts, headers } : { key, value, ts, headers };
  };
}

/** The reason given with a dead-lettered line. */
export function lineError(what: string, file: string, line: number, error: unknown): string {
  const message = error instanceof Error ? error.message : String(error);
  return `Cannot parse ${what}: ${file}:${line} is malformed (${message})`;
}

/** Event time from a field: epoch ms or a date string; throws when it is neither. */
export function eventTime(value: unknown, field: string): number {
  const raw = (value as Record<string, unknown> | null)?.[field];
  const ts = typeof raw === "number" ? raw : typeof raw === "string" ? Date.parse(raw) : NaN;
  if (!Number.isFinite(ts)) throw new Error(`field "${field}" is not a time`);
  return ts;
}
