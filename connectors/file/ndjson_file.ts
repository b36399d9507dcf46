/**
 * `ndjsonFile`: a file source that decodes NDJSON itself — one stage instead of source + decoder.
 *
 * @module
 */
import { z } from "../../actors/_deps.ts";
import { parseConfig } from "../../actors/_config.ts";
import type { StreamRecord } from "../../actors/record.ts";
import { defineSource, type SourceDefinition } from "../../actors/stage.ts";
import type { StageOptions, StageRef } from "../../actors/stage_ref.ts";
import { FileSet } from "./_file_set.ts";
import { readRoot } from "./_glob.ts";
import { sleep } from "../../actors/_sleep.ts";
import { eachLine, eventTime, lineError, lineRecords } from "./_lines.ts";
import type { FileChunk, FilePosition } from "./file_source.ts";

/** Options of {@linkcode ndjsonFile}; exactly one of `path` and `glob` is required. */
export interface NdjsonFileOptions {
  /** One file. */
  path?: string;
  /** Files matching a glob, read in path order. */
  glob?: string;
  /** Keep reading as files grow (see `fileSource`). Default `false`. */
  follow?: boolean;
  /** Gunzip input: `"auto"` (default) for `.gz` paths. */
  gzip?: "auto" | boolean;
  /** Bytes read per chunk. Default 65 536. */
  chunkBytes?: number;
  /** Take event time from this field (epoch ms or a date string). Default: the read time. */
  tsField?: string;
  /** How often followed files are polled, ms. Default 200. */
  pollMs?: number;
}

const ndjsonFileConfig: z.ZodType<NdjsonFileOptions> = z.object({
  path: z.string().min(1).optional(),
  glob: z.string().min(1).optional(),
  follow: z.boolean().optional(),
  gzip: z.union([z.literal("auto"), z.boolean()]).optional(),
  chunkBytes: z.number().int().safe().min(1).optional(),
  tsField: z.string().min(1).optional(),
  pollMs: z.number().positive().finite().optional(),
}).strict().refine((c) => (c.path === undefined) !== (c.glob === undefined), {
  message: "Exactly one of path and glob is required",
  path: ["path"],
});

/**
 * The `ndjsonFile` source definition (config {@linkcode NdjsonFileOptions}). Prefer the
 * {@linkcode ndjsonFile} builder.
 *
 * @example
 * ```ts
 * import { ndjsonFileStage } from "@sluice/sluice";
 * import assert from "node:assert/strict";
 *
 * assert.equal(ndjsonFileStage.name, "ndjsonFile");
 * ```
 */
export const ndjsonFileStage: SourceDefinition<unknown, NdjsonFileOptions> = defineSource({
  name: "ndjsonFile",
  config: ndjsonFileConfig,
  open(config, ctx) {
    const pollMs = config.pollMs ?? 200;
    const files = new FileSet({
      pattern: config.path ?? config.glob!,
      follow: config.follow ?? false,
      gzip: config.gzip ?? "auto",
      cursor: {
        lines: true,
        chunkBytes: config.chunkBytes ?? 65_536,
        maxLineBytes: 16 * 1024 * 1024,
        header: false,
      },
      mine: (p) => ctx.parallelism === 1 || ctx.partitionOf(p) % ctx.parallelism === ctx.instance,
    });
    // Decoded records of the current chunk not yet handed out, and the chunk's end position.
    let pending: StreamRecord<unknown>[] = [];
    let pendingEnd: FilePosition | undefined;
    let pendingStart: FilePosition | undefined;
    return {
      async pull({ max, signal }) {
        while (pending.length === 0) {
          const next = await files.next();
          if (next === "end") return null;
          if (next === "idle") {
            await sleep(pollMs, signal);
            return { records: [] };
          }
          const file = next.cursor.path;
          const chunk: FileChunk = { ...next, file, format: "ndjson" };
          // Files carry no event time: 0 unless `tsField` gives it.
          const source = { value: chunk, ts: 0 };
          const tsField = config.tsField;
          const lineRecord = lineRecords(source);
          eachLine(chunk, (text, line) => {
            if (text.length === 0 || text.trim() === "") return;
            try {
              const value: unknown = JSON.parse(text);
              const r = lineRecord(value, line);
              if (tsField) r.ts = eventTime(value, tsField);
              pending.push(r);
            } catch (e) {
              ctx.deadLetter(lineRecord(text, line), lineError("NDJSON", file, line, e));
            }
          });
          pendingStart = { file, byteOffset: next.offset, line: next.line };
          pendingEnd = {
            file,
            byteOffset: next.offset + next.bytes.length,
            line: next.cursor.line,
          };
        }
        const records = pending.slice(0, max);
        pending = pending.slice(records.length);
        // Only the pull that hands out a chunk's last record may claim the chunk's end.
        return { records, position: pending.length === 0 ? pendingEnd : pendingStart };
      },
      close() {
        files.close();
      },
    };
  },
});

/**
 * Reads NDJSON files and decodes them in the source: the simple way to read NDJSON.
 *
 * Tradeoff: decoding runs in the source's single worker, so JSON parsing cannot spread over
 * cores; for large files prefer `fileSource({ format: "ndjson" })` followed by
 * `decodeNdjson()` with `parallelism: N`. Records carry headers `{ file, line }`; a malformed
 * line is dead-lettered with its file and line (through the source's context). Positions are
 * {@linkcode FilePosition}s as with `fileSource`.
 *
 * @param pathOrOptions A file path, or {@linkcode NdjsonFileOptions}.
 * @param stageOptions Stage options.
 * @returns A source reference.
 * @throws {ConfigError} When the options are invalid.
 *
 * @example
 * ```ts
 * import { collect, ndjsonFile, pipeline } from "@sluice/sluice";
 * import assert from "node:assert/strict";
 *
 * const path = await Deno.makeTempFile();
 * await Deno.writeTextFile(path, '{"n":1}\n{"n":2}\n');
 * const out = collect<{ n: number }>();
 * await pipeline({ mode: "inline", signals: false }).from(ndjsonFile<{ n: number }>(path)).to(out.sink).run();
 * assert.deepEqual((await out.values()).map((v) => v.n), [1, 2]);
 * await out.clear();
 * ```
 */
export function ndjsonFile<T = unknown>(
  pathOrOptions: string | NdjsonFileOptions,
  stageOptions?: StageOptions,
): StageRef<never, T> {
  const config = typeof pathOrOptions === "string" ? { path: pathOrOptions } : pathOrOptions;
  parseConfig(ndjsonFileStage, stageOptions?.name ?? ndjsonFileStage.name, config);
  return {
    kind: "source",
    module: import.meta.url,
    export: "ndjsonFileStage",
    config,
    options: { permissions: { read: [readRoot(config)] }, ...stageOptions },
  };
}
