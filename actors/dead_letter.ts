/**
 * Dead-letter sinks: where records that keep failing go, with their reason.
 *
 * @module
 */
import type { DeadLetter } from "./_protocol.ts";

export type { DeadLetter };

/**
 * Receives dead letters on the main thread. `write` resolves when the entries are durable; the
 * failed records count as done (and their source offsets may be committed) only then.
 */
export interface DeadLetterSink {
  /**
   * Stores entries; rejects when they could not be stored: the stage that dead-lettered them fails
   * then, and its restart replays the input they came from (past `maxRestarts`, the pipeline fails).
   */
  write(entries: DeadLetter[]): Promise<void> | void;
  /** Releases the sink. */
  close?(): Promise<void> | void;
}

/**
 * Dead letters appended as NDJSON lines to a file (created with its directory when missing).
 *
 * @param path The file path.
 * @returns A sink.
 *
 * @example
 * ```ts
 * import { ndjsonDeadLetters } from "@sluice/sluice";
 * import assert from "node:assert/strict";
 *
 * const path = await Deno.makeTempFile();
 * const sink = ndjsonDeadLetters(path);
 * await sink.write([{
 *   record: { value: "x", ts: 0 },
 *   error: { code: "E", message: "bad" },
 *   stage: "parse",
 *   instance: 0,
 *   attempts: 3,
 *   at: 0,
 * }]);
 * assert.match(await Deno.readTextFile(path), /"bad"/);
 * ```
 */
export function ndjsonDeadLetters(path: string): DeadLetterSink {
  let ready: Promise<void> | undefined;
  return {
    async write(entries) {
      ready ??= (async () => {
        const dir = path.replace(/[/\\][^/\\]*$/, "");
        if (dir && dir !== path) await Deno.mkdir(dir, { recursive: true });
      })();
      await ready;
      const text = entries.map((e) => JSON.stringify(e)).join("\n") + "\n";
      await Deno.writeTextFile(path, text, { append: true });
    },
  };
}

/**
 * Dead letters kept in memory, for tests and `testPipeline`.
 *
 * @returns A sink whose `entries` array collects everything written.
 *
 * @example
 * ```ts
 * import { memoryDeadLetters } from "@sluice/sluice";
 * import assert from "node:assert/strict";
 *
 * const sink = memoryDeadLetters();
 * await sink.write([]);
 * assert.deepEqual(sink.entries, []);
 * ```
 */
export function memoryDeadLetters(): DeadLetterSink & { entries: DeadLetter[] } {
  const entries: DeadLetter[] = [];
  return {
    entries,
    write(list) {
      entries.push(...list);
    },
  };
}
