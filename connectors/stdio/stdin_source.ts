/**
 * `stdinSource`: reads standard input as lines or NDJSON.
 *
 * @module
 */
import { z } from "../../actors/_deps.ts";
import { parseConfig } from "../../actors/_config.ts";
import type { StreamRecord } from "../../actors/record.ts";
import { defineSource, type SourceDefinition } from "../../actors/stage.ts";
import type { StageOptions, StageRef } from "../../actors/stage_ref.ts";

/** Options of {@linkcode stdinSource}. */
export interface StdinSourceOptions {
  /** `lines`: one string record per line; `ndjson`: one parsed record per non-blank line. Default `"lines"`. */
  format?: "lines" | "ndjson";
}

const stdinConfig: z.ZodType<StdinSourceOptions> = z.object({
  format: z.enum(["lines", "ndjson"]).optional(),
}).strict();

/** Resolves with `p`, or with `null` once `signal` aborts. */
function orAbort<T>(p: Promise<T>, signal: AbortSignal): Promise<T | null> {
  if (signal.aborted) return Promise.resolve(null);
  return new Promise((resolve, reject) => {
    const abort = () => resolve(null);
    signal.addEventListener("abort", abort, { once: true });
    p.then(resolve, reject).finally(() => signal.removeEventListener("abort", abort));
  });
}

/**
 * The `stdin` source definition (config {@linkcode StdinSourceOptions}). Prefer the
 * {@linkcode stdinSource} builder.
 *
 * @example
 * ```ts
 * import { stdinSourceStage } from "@sluice/sluice";
 * import assert from "node:assert/strict";
 *
 * assert.equal(stdinSourceStage.name, "stdin");
 * ```
 */
export const stdinSourceStage: SourceDefinition<unknown, StdinSourceOptions> = defineSource({
  name: "stdin",
  config: stdinConfig,
  open(config, ctx) {
    const ndjson = config.format === "ndjson";
    const decoder = new TextDecoder();
    let text = "";
    let line = 0;
    let eof = false;
    // A read still in flight (kept across pulls, so no input is lost when a pull is aborted).
    let reading: Promise<number | null> | undefined;
    const buf = new Uint8Array(65_536);
    const toRecord = (raw: string, now: number): StreamRecord<unknown> | undefined => {
      const n = ++line;
      const headers = { source: "stdin", line: String(n) };
      const lineText = raw.endsWith("\r") ? raw.slice(0, -1) : raw;
      if (!ndjson) return { value: lineText, ts: now, headers };
      if (lineText.trim() === "") return undefined;
      try {
        return { value: JSON.parse(lineText), ts: now, headers };
      } catch (e) {
        const reason = `Cannot parse NDJSON: stdin:${n} is malformed (${(e as Error).message})`;
        ctx.deadLetter({ value: lineText, ts: now, headers }, reason);
        return undefined;
      }
    };
    return {
      async pull({ max, signal }) {
        while (!eof && !text.includes("\n")) {
          reading ??= Deno.stdin.read(buf);
          const n = await orAbort(reading, signal);
          if (signal.aborted) return null;
          reading = undefined;
          if (n === null) {
            eof = true;
            text += decoder.decode();
          } else text += decoder.decode(buf.subarray(0, n), { stream: true });
        }
        if (eof && text === "") return null;
        const records: StreamRecord<unknown>[] = [];
        const now = ctx.now();
        let from = 0;
        for (
          let nl = text.indexOf("\n");
          nl >= 0 && records.length < max;
          nl = text.indexOf("\n", from)
        ) {
          const r = toRecord(text.slice(from, nl), now);
          from = nl + 1;
          if (r) records.push(r);
        }
        text = text.slice(from);
        if (eof && text !== "" && records.length < max) {
          const r = toRecord(text, now);
          text = "";
          if (r) records.push(r);
        }
        return { records, position: line };
      },
    };
  },
});

/**
 * Reads standard input, one record per line (`lines`) or per JSON line (`ndjson`), with headers
 * `{ source: "stdin", line }`; ends at end of input. Pull-driven: stdin is read only when the
 * pipeline pulls, so a slow pipeline makes the writer of the pipe block. A malformed NDJSON line
 * is dead-lettered with its line number.
 *
 * Permissions: none. A Deno worker shares the process's standard streams and reading them needs
 * no permission, so the stage runs in a worker like any other (verified in workers mode).
 *
 * @param options `format` (default `"lines"`).
 * @param stageOptions Stage options.
 * @returns A source reference.
 * @throws {ConfigError} When the options are invalid.
 *
 * @example
 * ```ts
 * import { stdinSource } from "@sluice/sluice";
 * import assert from "node:assert/strict";
 *
 * assert.equal(stdinSource({ format: "ndjson" }).kind, "source");
 * ```
 */
export function stdinSource<T = string>(
  options: StdinSourceOptions = {},
  stageOptions?: StageOptions,
): StageRef<never, T> {
  parseConfig(stdinSourceStage, stageOptions?.name ?? stdinSourceStage.name, options);
  const ref = { kind: "source", module: import.meta.url, export: "stdinSourceStage" } as const;
  return { ...ref, config: options, ...(stageOptions ? { options: stageOptions } : {}) };
}
