/**
 * Test helpers for users: an in-memory source, a collecting sink and `testPipeline`.
 *
 * @module
 */
import { z } from "./_deps.ts";
import type { StreamRecord } from "./record.ts";
import { defineSink, defineSource, type SinkDefinition, type SourceDefinition } from "./stage.ts";
import type { StageOptions, StageRef } from "./stage_ref.ts";
import { type Flow, pipeline, type PipelineOptions, type RunSummary } from "./pipeline.ts";
import { type DeadLetter, memoryDeadLetters } from "./dead_letter.ts";

/** An input item: a record, or a watermark marker that advances event time at that point. */
export type TestInput<T> = StreamRecord<T> | { watermark: number };

// zod 3 lets a `z.unknown()` field be missing; a record's `value` may hold `undefined` but must be
// there, or `{ watermark, ts }` would read as a record that lost its watermark.
const recordSchema = z.object({
  key: z.string().optional(),
  value: z.unknown(),
  ts: z.number().finite(),
  headers: z.record(z.string(), z.string()).optional(),
}).refine((r) => "value" in r, "Expected a value") as unknown as z.ZodType<StreamRecord<unknown>>;

/** Source definition behind {@linkcode fromArray}. */
export const arraySource: SourceDefinition<unknown, { items: TestInput<unknown>[] }> = defineSource(
  {
    name: "array",
    config: z.object({
      items: z.array(z.union([recordSchema, z.object({ watermark: z.number().finite() })])),
    }).strict(),
    open({ items }) {
      let at = 0;
      return {
        pull({ max }) {
          if (at >= items.length) return null;
          const first = items[at]!;
          if ("watermark" in first) {
            at++;
            return { records: [], watermark: first.watermark, position: at };
          }
          const records: StreamRecord<unknown>[] = [];
          while (at < items.length && records.length < max) {
            const item = items[at]!;
            if ("watermark" in item) break;
            records.push(item as StreamRecord<unknown>);
            at++;
          }
          return { records, position: at };
        },
      };
    },
  },
);

/**
 * A source that emits the given records (and watermark markers) in order, then ends.
 *
 * @example
 * ```ts
 * import { fromArray } from "@sluice/sluice";
 * import assert from "node:assert/strict";
 *
 * assert.equal(fromArray([{ value: 1, ts: 0 }]).kind, "source");
 * ```
 */
export function fromArray<T>(items: TestInput<T>[], options?: StageOptions): StageRef<never, T> {
  return {
    kind: "source",
    module: import.meta.url,
    export: "arraySource",
    config: { items },
    options,
  };
}

/** Sink definition behind {@linkcode collect}: appends records as NDJSON to a file. */
export const collectSink: SinkDefinition<unknown, { path: string }> = defineSink({
  name: "collect",
  config: z.object({ path: z.string() }).strict(),
  open({ path }) {
    return {
      async write(records) {
        const text = records.map((r) => JSON.stringify(r)).join("\n") + "\n";
        await Deno.writeTextFile(path, text, { append: true });
      },
    };
  },
});

/** A collecting sink and the means to read what reached it. */
export interface Collector<T> {
  /** The sink to put in a pipeline. */
  sink: StageRef<T, never>;
  /** Every record written so far. */
  records(): Promise<StreamRecord<T>[]>;
  /** Every value written so far. */
  values(): Promise<T[]>;
  /** Deletes the backing file. */
  clear(): Promise<void>;
}

/**
 * A sink that collects records (as JSON) so a test can read them back, in workers or inline mode.
 *
 * @param options Stage options for the sink.
 * @returns The collector.
 *
 * @example
 * ```ts
 * import { collect } from "@sluice/sluice";
 * import assert from "node:assert/strict";
 *
 * const out = collect<number>();
 * assert.deepEqual(await out.values(), []);
 * await out.clear();
 * ```
 */
export function collect<T>(options: StageOptions = {}): Collector<T> {
  const path = Deno.makeTempFileSync({ prefix: "sluice-collect-", suffix: ".ndjson" });
  const read = async (): Promise<StreamRecord<T>[]> => {
    let text = "";
    try {
      text = await Deno.readTextFile(path);
    } catch (e) {
      if (!(e instanceof Deno.errors.NotFound)) throw e;
    }
    return text.split("\n").filter((l) => l.length > 0).map((l) => JSON.parse(l));
  };
  return {
    sink: {
      kind: "sink",
      module: import.meta.url,
      export: "collectSink",
      config: { path },
      options: { permissions: { read: [path], write: [path] }, ...options },
    },
    records: read,
    values: async () => (await read()).map((r) => r.value),
    clear: () => Deno.remove(path).catch(() => {}),
  };
}

/** What {@linkcode testPipeline} returns. */
export interface TestResult<O> {
  /** Records that reached the end of the flow. */
  output: StreamRecord<O>[];
  /** Records sent to each requested side output. */
  sides: Record<string, StreamRecord<unknown>[]>;
  /** Dead letters, with reasons. */
  deadLetters: DeadLetter[];
  /** Per-stage counters. */
  summary: RunSummary;
}

/** Options of {@linkcode testPipeline}. */
export interface TestPipelineOptions extends Omit<PipelineOptions, "deadLetter"> {
  /** Side outputs of the last stage to collect (e.g. `["late"]`). */
  sideOutputs?: string[];
}

/**
 * Runs a flow over in-memory input and returns its output and dead letters. Inline by default
 * (fast, deterministic); pass `mode: "workers"` to run the same flow in workers. Event time is
 * driven by the input: when it holds `{ watermark: ms }` items, they alone advance it, exactly
 * there (and the end of input advances it to +∞); without any, the source's usual watermark
 * (max ts − `outOfOrdernessMs`) applies.
 *
 * @param build Adds the stages under test to the flow it is given.
 * @param input Records and watermark markers, in order.
 * @param options Pipeline options.
 * @returns Output records, side outputs, dead letters and counters.
 *
 * @example Doubling with a filter
 * ```ts
 * import { filter, map, testPipeline } from "@sluice/sluice";
 * import assert from "node:assert/strict";
 *
 * const { output } = await testPipeline(
 *   (flow) => flow.via(filter((v: number) => v > 1)).via(map((v: number) => v * 2)),
 *   [1, 2, 3].map((v) => ({ value: v, ts: v })),
 * );
 * assert.deepEqual(output.map((r) => r.value).sort(), [4, 6]);
 * ```
 */
export async function testPipeline<I, O>(
  build: (flow: Flow<I>) => Flow<O>,
  input: TestInput<I>[],
  options: TestPipelineOptions = {},
): Promise<TestResult<O>> {
  const { sideOutputs = [], ...rest } = options;
  const dead = memoryDeadLetters();
  // With `{ watermark }` items in the input, they alone move event time (until the input ends).
  const explicit = input.some((item) => "watermark" in item);
  const p = pipeline({
    mode: "inline",
    signals: false,
    name: "test",
    outOfOrdernessMs: explicit ? 1e15 : 0,
    ...rest,
    deadLetter: dead,
  });
  const last = build(p.from(fromArray(input)));
  const out = collect<O>();
  const sides = sideOutputs.map((name) => [name, collect<unknown>()] as const);
  last.to(out.sink);
  for (const [name, c] of sides) last.sideOutput(name).to(c.sink);
  try {
    const summary = await p.run();
    const sideRecords: Record<string, StreamRecord<unknown>[]> = {};
    for (const [name, c] of sides) sideRecords[name] = await c.records();
    return { output: await out.records(), sides: sideRecords, deadLetters: dead.entries, summary };
  } finally {
    await out.clear();
    for (const [, c] of sides) await c.clear();
  }
}
