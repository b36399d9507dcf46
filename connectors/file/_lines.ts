// Splitting a chunk record into numbered lines, and the records decoders emit for them.
import type { StreamRecord } from "../../actors/record.ts";
import type { FileChunk } from "./file_source.ts";

/** One line of a chunk: its text (no line terminator) and its 1-based number in the file. */
export interface NumberedLine {
  text: string;
  line: number;
}

const decoder = new TextDecoder();

/** The lines of a chunk; a final newline does not start an empty line. */
export function chunkLines(chunk: FileChunk): NumberedLine[] {
  const text = decoder.decode(chunk.bytes);
  const parts = text.split("\n");
  if (parts[parts.length - 1] === "") parts.pop();
  return parts.map((part, i) => ({
    text: part.endsWith("\r") ? part.slice(0, -1) : part,
    line: chunk.line + i,
  }));
}

/** A record for one line: the chunk's event time and headers `{ file, line }` (plus the chunk's others). */
export function lineRecord<T>(
  source: StreamRecord<FileChunk>,
  value: T,
  line: number,
): StreamRecord<T> {
  const headers: Record<string, string> = {
    ...source.headers,
    file: source.value.file,
    line: String(line),
  };
  delete headers.offset;
  const record: StreamRecord<T> = { value, ts: source.ts, headers };
  if (source.key !== undefined) record.key = source.key;
  return record;
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
