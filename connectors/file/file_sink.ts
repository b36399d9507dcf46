/**
 * `fileSink`: appends records to files as NDJSON, lines or CSV, optionally gzipped, rotated by
 * size or age with atomic renames.
 *
 * @module
 */
import { z } from "../../actors/_deps.ts";
import { parseConfig } from "../../actors/_config.ts";
import type { StreamRecord } from "../../actors/record.ts";
import { defineSink, type SinkDefinition } from "../../actors/stage.ts";
import type { StageOptions, StageRef } from "../../actors/stage_ref.ts";
import { csvCharSchema } from "./_csv.ts";
import { BatchEncoder, type CsvWriteOptions, toBytes, writeAll } from "./_encode.ts";
import { fillPattern, inProgressName, partPattern, scanParts, splitPath } from "./_part_names.ts";

export type { CsvWriteOptions };

/** Options of {@linkcode fileSink}. */
export interface FileSinkOptions {
  /**
   * Output path. Placeholders: `{i}` instance (required when parallelism > 1); with `rotate`,
   * `{n}` part number (6 digits) and `{ts}` part start (ms). With `rotate` and neither `{n}` nor
   * `{ts}`, `-{n}` is inserted before the extension: `out/events.ndjson` →
   * `out/events-000000.ndjson`, `out/events-000001.ndjson`, ...
   */
  path: string;
  /** `ndjson`: `JSON.stringify(value)` per line; `lines`: strings as they are (others as JSON); `csv`. */
  format: "ndjson" | "csv" | "lines";
  /** Start a new part once the current one holds `bytes` or is `ms` old. Default: no rotation. */
  rotate?: { bytes?: number; ms?: number };
  /** Gzip the output (one gzip member per batch; use a `.gz` path). Default `false`. */
  gzip?: boolean;
  /** `fsync` each batch before `write` resolves (and each part before its rename). Default `false`. */
  durable?: boolean;
  /** CSV output options. */
  csv?: CsvWriteOptions;
}

const fileSinkConfig: z.ZodType<FileSinkOptions> = z.object({
  path: z.string().min(1),
  format: z.enum(["ndjson", "csv", "lines"]),
  rotate: z.object({
    bytes: z.number().int().safe().positive().optional(),
    ms: z.number().positive().finite().optional(),
  }).strict().refine((r) => r.bytes !== undefined || r.ms !== undefined, {
    message: "Set bytes or ms",
  }).optional(),
  gzip: z.boolean().optional(),
  durable: z.boolean().optional(),
  csv: z.object({
    columns: z.array(z.string().min(1)).min(1).optional(),
    header: z.boolean().optional(),
    delimiter: csvCharSchema.optional(),
  }).strict().optional(),
}).strict().refine((c) => c.rotate || !/\{(n|ts)\}/.test(c.path), {
  message: "{n} and {ts} need rotate",
  path: ["path"],
});

interface Part {
  file: Deno.FsFile;
  temp: string;
  final: string;
  bytes: number;
  opened: number;
}

/**
 * The `file` sink definition (config {@linkcode FileSinkOptions}). Prefer the
 * {@linkcode fileSink} builder.
 *
 * @example
 * ```ts
 * import { fileSinkStage } from "@sluice/sluice";
 * import assert from "node:assert/strict";
 *
 * assert.equal(fileSinkStage.kind, "sink");
 * ```
 */
export const fileSinkStage: SinkDefinition<unknown, FileSinkOptions> = defineSink({
  name: "fileSink",
  config: fileSinkConfig,
  async open(config, ctx) {
    if (ctx.parallelism > 1 && !config.path.includes("{i}")) {
      throw new TypeError(
        `Cannot open file sink: path has no {i} placeholder and parallelism is ${ctx.parallelism}`,
      );
    }
    const gzip = config.gzip ?? false;
    const durable = config.durable ?? false;
    const encoder = await new BatchEncoder(config.format, config.csv).load();
    const { rotate } = config;
    const path = config.path.replaceAll("{i}", String(ctx.instance));
    await Deno.mkdir(splitPath(path).dir, { recursive: true });
    let lock: Promise<unknown> = Promise.resolve();
    const serial = <T>(fn: () => Promise<T>): Promise<T> => {
      const run = lock.then(fn);
      lock = run.catch(() => {});
      return run;
    };
    // A stage the runtime kills is not closed: the kill closes its files at once (a write in
    // flight then fails; a rotated part stays in progress, completed by the next open).
    let killed = false;
    const alive = () => {
      if (killed) throw new Error(`Cannot write to ${path}: the file sink was stopped`);
    };

    if (!rotate) {
      const file = await Deno.open(path, { append: true, create: true });
      const stat = await file.stat();
      let size = stat.size;
      const regular = stat.isFile;
      let closed = false;
      const closeFile = () => {
        if (!closed) file.close();
        closed = true;
      };
      ctx.signal.addEventListener("abort", () => {
        killed = true;
        closeFile();
      }, { once: true });
      return {
        write: (records: StreamRecord<unknown>[]) =>
          serial(async () => {
            alive();
            const bytes = await toBytes(encoder.text(records, size === 0), gzip);
            await writeAll(file, bytes, regular);
            if (durable) await file.syncData();
            size += bytes.length;
          }),
        close: () => serial(() => Promise.resolve(closeFile())),
      };
    }

    const pattern = partPattern(path);
    const scan = await scanParts(pattern, ctx.instance);
    for (const { temp, final } of scan.leftovers) await Deno.rename(temp, final);
    let next = scan.next;
    let part: Part | undefined;

    const openPart = async (): Promise<Part> => {
      let ts = ctx.now();
      let final = fillPattern(pattern, { n: next, ts, i: ctx.instance });
      while (await Deno.lstat(final).then(() => true, () => false)) {
        final = fillPattern(pattern, { n: ++next, ts: ++ts, i: ctx.instance });
      }
      next++;
      const temp = inProgressName(final);
      const file = await Deno.open(temp, { write: true, create: true, truncate: true });
      if (killed) file.close(); // killed while it opened
      alive();
      return { file, temp, final, bytes: 0, opened: ctx.now() };
    };
    const finish = async (): Promise<void> => {
      if (!part) return;
      const done = part;
      part = undefined;
      if (durable) await done.file.sync();
      done.file.close();
      await Deno.rename(done.temp, done.final); // atomic: readers see the whole part or nothing
    };
    const due = (p: Part) =>
      (rotate.bytes !== undefined && p.bytes >= rotate.bytes) ||
      (rotate.ms !== undefined && ctx.now() - p.opened >= rotate.ms);

    const period = rotate.ms === undefined ? undefined : Math.max(5, Math.min(rotate.ms / 2, 1000));
    const timer = period === undefined ? undefined : setInterval(() => {
      if (part && due(part)) void serial(finish).catch(() => {});
    }, period);
    ctx.signal.addEventListener("abort", () => {
      killed = true;
      clearInterval(timer);
      part?.file.close();
      part = undefined;
    }, { once: true });

    return {
      write: (records: StreamRecord<unknown>[]) =>
        serial(async () => {
          alive();
          if (part && due(part)) await finish();
          part ??= await openPart();
          const bytes = await toBytes(encoder.text(records, part.bytes === 0), gzip);
          await writeAll(part.file, bytes, true); // a part is a file it made itself
          if (durable) await part.file.syncData();
          part.bytes += bytes.length;
          if (due(part)) await finish();
        }),
      flush: () => serial(finish),
      close: () => {
        clearInterval(timer);
        return serial(finish);
      },
    };
  },
});

/**
 * Writes records to files. `write` resolves once the batch was written (and `fsync`ed with
 * `durable: true`), so upstream acks only follow written data.
 *
 * - **Without `rotate`**: appends to `path` (CSV header when the file is new or empty).
 * - **With `rotate`**: each part is written under a temp name `.<name>.inprogress` in the same
 *   directory and renamed to its final name (see {@linkcode FileSinkOptions.path}) when it reaches
 *   `rotate.bytes` (checked after each batch, so a part may exceed it by one batch) or is
 *   `rotate.ms` old (checked by a timer too, so an idle part is still completed), and at the end
 *   of input. The rename is atomic: readers listing the directory (ignoring dot files) see either
 *   no part or a whole one. After a crash, the in-progress part left behind holds acknowledged
 *   data: the next open renames it to its final name. Numbering continues after existing parts.
 * - **Gzip**: each batch is one gzip member, so even an appended file is valid gzip at every
 *   batch boundary (`gunzip`, and `fileSource`, read concatenated members).
 * - **Permissions**: the worker gets `read` and `write` on the directory of `path`.
 *
 * @param options See {@linkcode FileSinkOptions}.
 * @param stageOptions Stage options (name, parallelism, ...).
 * @returns A sink reference.
 * @throws {ConfigError} When the options are invalid, naming the zod path.
 *
 * @example NDJSON out
 * ```ts
 * import { fileSink, fromArray, pipeline } from "@sluice/sluice";
 * import assert from "node:assert/strict";
 *
 * const dir = await Deno.makeTempDir();
 * await pipeline({ mode: "inline", signals: false })
 *   .from(fromArray([{ value: { a: 1 }, ts: 0 }, { value: { a: 2 }, ts: 0 }]))
 *   .to(fileSink({ path: `${dir}/out.ndjson`, format: "ndjson" }))
 *   .run();
 * assert.equal(await Deno.readTextFile(`${dir}/out.ndjson`), '{"a":1}\n{"a":2}\n');
 * ```
 */
export function fileSink<T = unknown>(
  options: FileSinkOptions,
  stageOptions?: StageOptions,
): StageRef<T, never> {
  parseConfig(fileSinkStage, stageOptions?.name ?? fileSinkStage.name, options);
  const { dir } = splitPath(options.path);
  return {
    kind: "sink",
    module: import.meta.url,
    export: "fileSinkStage",
    config: options,
    options: { permissions: { read: [dir], write: [dir] }, ...stageOptions },
  };
}
