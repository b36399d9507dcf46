/**
 * `fileSource`: reads files (one path or a glob, plain or gzip, once or followed like `tail -F`)
 * as raw byte chunks cut at line boundaries, to be decoded in parallel downstream.
 *
 * @module
 */
import { z } from "../../actors/_deps.ts";
import { parseConfig } from "../../actors/_config.ts";
import { defineSource, type SourceDefinition } from "../../actors/stage.ts";
import type { StageOptions, StageRef } from "../../actors/stage_ref.ts";
import { type CsvOptions, csvOptionsSchema } from "./_csv.ts";
import { FileSet } from "./_file_set.ts";
import { readRoot } from "./_glob.ts";
import { sleep } from "../../actors/_sleep.ts";

/** Formats a file source can cut its chunks for. */
export type FileFormat = "ndjson" | "csv" | "lines" | "bytes";

/** A resumable position in a set of files: the offset after the last chunk handed out. */
export interface FilePosition {
  /** The file's path. */
  file: string;
  /** Byte offset the next read starts at (in decompressed bytes for gzip). */
  byteOffset: number;
  /** Line number at `byteOffset` (1-based). */
  line: number;
  /**
   * Index of the chunk that ended at `byteOffset` among the file's chunks, when one file is
   * striped over instances: a resumed instance goes on taking its own chunks.
   */
  chunk?: number;
}

/** The value of a chunk record: bytes of whole lines from one file and where they start. */
export interface FileChunk {
  /** The file's path. */
  file: string;
  /** How the bytes are meant to be decoded. */
  format: FileFormat;
  /** Byte offset of the first byte in the file (decompressed offset for gzip). */
  offset: number;
  /** 1-based number of the first line in `bytes`. */
  line: number;
  /** Whole lines (the last one may lack its newline at the end of a file). */
  bytes: Uint8Array;
  /** The file's raw CSV header line (format `csv` with `csv.header`). */
  header?: string;
  /** CSV options of the source, used by `decodeCsv()` unless it overrides them. */
  csv?: CsvOptions;
}

/** Options of {@linkcode fileSource}. Exactly one of `path` and `glob` is required. */
export interface FileSourceOptions {
  /** One file. */
  path?: string;
  /** Files matching a glob (`*`, `?`, `**`, `[ab]`, `{a,b}`), read in path order. */
  glob?: string;
  /** How chunks are cut (`bytes`: anywhere) and later decoded. */
  format: FileFormat;
  /** Keep reading as files grow, survive rotation and truncation, pick up new files. Default `false`. */
  follow?: boolean;
  /** Gunzip input: `"auto"` (default) for paths ending in `.gz`. Gzip files are never followed. */
  gzip?: "auto" | boolean;
  /** Target size of a chunk in bytes. Default 65 536. */
  chunkBytes?: number;
  /** A line longer than this is cut anyway (and likely dead-lettered by the decoder). Default 16 MiB. */
  maxLineBytes?: number;
  /** How often followed files are checked for growth, rotation and new files, ms. Default 200. */
  pollMs?: number;
  /** CSV options (format `csv`); `header` (default `true`) makes line 1 of each file the header. */
  csv?: CsvOptions;
  /** Resume from a position acked earlier: files before it are skipped. */
  startAt?: FilePosition;
}

/** Config of {@linkcode fileSourceStage} after validation. */
export type FileSourceConfig = FileSourceOptions & {
  follow: boolean;
  gzip: "auto" | boolean;
  chunkBytes: number;
  maxLineBytes: number;
  pollMs: number;
};

const positionSchema = z.object({
  file: z.string().min(1),
  byteOffset: z.number().int().safe().min(0),
  line: z.number().int().safe().min(1),
  chunk: z.number().int().safe().min(0).optional(),
}).strict();

const fileSourceConfig: z.ZodType<FileSourceConfig, z.ZodTypeDef, FileSourceOptions> = z.object({
  path: z.string().min(1).optional(),
  glob: z.string().min(1).optional(),
  format: z.enum(["ndjson", "csv", "lines", "bytes"]),
  follow: z.boolean().default(false),
  gzip: z.union([z.literal("auto"), z.boolean()]).default("auto"),
  chunkBytes: z.number().int().safe().min(1).default(65_536),
  maxLineBytes: z.number().int().safe().min(1).default(16 * 1024 * 1024),
  pollMs: z.number().positive().finite().default(200),
  csv: csvOptionsSchema.optional(),
  startAt: positionSchema.optional(),
}).strict().refine((c) => (c.path === undefined) !== (c.glob === undefined), {
  message: "Exactly one of path and glob is required",
  path: ["path"],
}).refine((c) => !(c.follow && c.gzip === true), {
  message: "Gzip files cannot be followed",
  path: ["gzip"],
});

/**
 * The `file` source definition (config {@linkcode FileSourceOptions}). Each pull reads one chunk,
 * only when pulled; the position of a pull is a {@linkcode FilePosition}. With parallelism N, a
 * glob's files are spread over the instances by path hash; one `path` (not followed) is read by
 * every instance, instance i handing out chunks i, i + N, … and only counting the lines of the
 * others, so a decoder fused behind it parses in N workers with no hop between them. Prefer the
 * {@linkcode fileSource} builder.
 *
 * @example
 * ```ts
 * import { fileSourceStage } from "@sluice/sluice";
 * import assert from "node:assert/strict";
 *
 * assert.equal(fileSourceStage.kind, "source");
 * ```
 */
export const fileSourceStage: SourceDefinition<FileChunk, FileSourceConfig> = defineSource({
  name: "file",
  config: fileSourceConfig,
  permissions: "none",
  open(config, ctx) {
    const csvHeader = config.format === "csv" && (config.csv?.header ?? true);
    // One file read by N instances: each takes every N-th chunk (the cut is the same in all).
    const striped = config.path !== undefined && !config.follow && ctx.parallelism > 1;
    const resumed = positionSchema.safeParse(ctx.resumeFrom);
    const files = new FileSet({
      pattern: config.path ?? config.glob!,
      follow: config.follow,
      gzip: config.gzip,
      // Fused with a stateful stage, a restored checkpoint says where its input ended.
      startAt: resumed.success ? resumed.data : config.startAt,
      cursor: {
        lines: config.format !== "bytes",
        chunkBytes: config.chunkBytes,
        maxLineBytes: config.maxLineBytes,
        header: csvHeader,
      },
      mine: (path) =>
        striped || ctx.parallelism === 1 ||
        ctx.partitionOf(path) % ctx.parallelism === ctx.instance,
    });
    // Striped: of each file's chunks, instance i takes those with index i, i + N, ...
    const skip = striped ? (index: number) => index % ctx.parallelism !== ctx.instance : undefined;
    // A stage the runtime kills is not closed: its files are closed all the same.
    ctx.signal.addEventListener("abort", () => files.close(), { once: true });
    return {
      async pull({ signal }) {
        // Another instance's chunks are only cut and their lines counted (line numbers stay
        // exact); this one's are read.
        let next = await files.next(skip);
        while (typeof next === "object" && next.skipped) next = await files.next(skip);
        if (next === "end") return null;
        if (next === "idle") {
          await sleep(config.pollMs, signal);
          return { records: [] };
        }
        const { cursor, bytes, offset, line, index } = next;
        const value: FileChunk = { file: cursor.path, format: config.format, offset, line, bytes };
        if (cursor.header !== undefined) value.header = cursor.header;
        if (config.csv) value.csv = config.csv;
        const headers = { file: cursor.path, line: String(line), offset: String(offset) };
        const position: FilePosition = {
          file: cursor.path,
          byteOffset: offset + bytes.length,
          line: cursor.line,
        };
        if (striped) position.chunk = index;
        // A chunk has no event time of its own (0): decoders take it from the data (`tsField`),
        // and a decoder with the `watermarks` stage option turns it into watermarks.
        return { records: [{ value, ts: 0, headers }], position };
      },
      close() {
        files.close();
      },
    };
  },
});

/**
 * Reads files as chunks of whole lines ({@linkcode FileChunk} records), for decoding downstream
 * with `decodeLines()`, `decodeNdjson()` or `decodeCsv()` — stateless processors that can run
 * with `parallelism: N`, so parsing scales past one core while the read stays sequential.
 *
 * - **Chunks**: about `chunkBytes` each, cut after the last newline; the partial last line is
 *   carried into the next chunk, so no chunk splits a line or a UTF-8 character. Each chunk
 *   carries its file, byte offset and first line number, so decoders number lines exactly.
 * - **Pull-driven**: a chunk is read only when the pipeline pulls; a backed-up pipeline stops
 *   the reads.
 * - **Positions**: each pull's position is a {@linkcode FilePosition} (the offset after its
 *   chunk). The runtime acks positions in order once every record of the chunk is done, so the
 *   last acked position is a safe point to resume from (`startAt`) — at-least-once. Fused with a
 *   stateful stage (parallelism 1), the source resumes by itself from the position its restored
 *   checkpoint holds (`ctx.resumeFrom`), so the state and the input line up exactly.
 * - **Follow** (`tail -F`): reads to the end, then polls every `pollMs`: growth is read, a path
 *   that now names another file (rotation by rename) is read from its start once the old file is
 *   drained, a file that shrank (truncation) is read again from its start, and new files matching
 *   the glob are picked up. A partial last line is held until its newline arrives.
 * - **Gzip**: `.gz` files are gunzipped on the fly (also concatenated members); offsets count
 *   decompressed bytes, so resuming a gzip file re-reads it up to the offset.
 * - **Parallel reads**: with `parallelism: N`, a glob's files are spread over the instances; one
 *   `path` (not followed) is striped: every instance reads the file, instance i hands out chunks
 *   i, i + N, … and only counts the lines of the rest. A decoder with the same parallelism is
 *   fused behind it, so parsing runs in N workers and raw bytes never cross a channel. Positions
 *   are then per instance; a `startAt` applies to every instance, which stripe from there.
 * - **Permissions**: the worker gets `read` on the path (or the glob's base directory).
 *
 * @param options See {@linkcode FileSourceOptions}.
 * @param stageOptions Stage options (name, parallelism, ...).
 * @returns A source reference for a pipeline.
 * @throws {ConfigError} When the options are invalid, naming the zod path.
 *
 * @example Counting the lines of a file
 * ```ts
 * import { collect, decodeLines, fileSource, pipeline } from "@sluice/sluice";
 * import assert from "node:assert/strict";
 *
 * const path = await Deno.makeTempFile();
 * await Deno.writeTextFile(path, "a\nb\nc\n");
 * const out = collect<string>();
 * await pipeline({ mode: "inline", signals: false })
 *   .from(fileSource({ path, format: "lines" }))
 *   .via(decodeLines())
 *   .to(out.sink)
 *   .run();
 * assert.deepEqual(await out.values(), ["a", "b", "c"]);
 * await out.clear();
 * ```
 */
export function fileSource(
  options: FileSourceOptions,
  stageOptions?: StageOptions,
): StageRef<never, FileChunk> {
  parseConfig(fileSourceStage, stageOptions?.name ?? fileSourceStage.name, options);
  return {
    kind: "source",
    module: import.meta.url,
    export: "fileSourceStage",
    config: options,
    options: { permissions: { read: [readRoot(options)] }, ...stageOptions },
  };
}
