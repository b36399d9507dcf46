// Shared helpers of the runtime-driven processor tests: every case runs through testPipeline()
// once per hosting mode, and the same expected output is asserted in both.
import {
  type DeadLetter,
  type Flow,
  type StreamRecord,
  type TestInput,
  testPipeline,
  type TestPipelineOptions,
  type TestResult,
} from "../../../mod.ts";

/** The hosting modes every case runs in. */
export const MODES = ["inline", "workers"] as const;

/** A hosting mode. */
export type Mode = (typeof MODES)[number];

/**
 * Registers `name (inline)` and `name (workers)`, each running `fn` with its mode. `ignore` is for
 * a test that shows a known, reported bug (say which in a comment beside it).
 */
export function modeTest(
  name: string,
  fn: (mode: Mode) => Promise<void>,
  options: { ignore?: boolean } = {},
): void {
  for (const mode of MODES) {
    Deno.test({ name: `${name} (${mode})`, ignore: options.ignore ?? false, fn: () => fn(mode) });
  }
}

// Inputs mix value shapes on purpose (NaN, null, missing fields): the flow's input type is open.
// deno-lint-ignore no-explicit-any
type OpenFlow = Flow<any>;

/** Runs `build` over `input` with testPipeline in `mode`. */
export function run<O>(
  mode: Mode,
  build: (flow: OpenFlow) => Flow<O>,
  input: readonly TestInput<unknown>[],
  options: Omit<TestPipelineOptions, "mode"> = {},
): Promise<TestResult<O>> {
  return testPipeline(build, [...input], { ...options, mode });
}

/** A record; `key` and `headers` only when given. */
export function rec<T>(
  value: T,
  ts: number,
  key?: string,
  headers?: Record<string, string>,
): StreamRecord<T> {
  const r: StreamRecord<T> = { value, ts };
  if (key !== undefined) r.key = key;
  if (headers !== undefined) r.headers = headers;
  return r;
}

/** A watermark marker for testPipeline input. */
export function wm(ms: number): { watermark: number } {
  return { watermark: ms };
}

/** The values of the output records, in arrival order. */
export function values<O>(result: TestResult<O>): O[] {
  return result.output.map((r) => r.value);
}

/** What identifies a dead letter in a comparison: stage, error message, attempts and record. */
export interface DeadSummary {
  stage: string;
  message: string;
  attempts: number;
  record: StreamRecord<unknown>;
}

/** The dead letters of a run, stripped of time, instance and stack, in arrival order. */
export function dead(result: { deadLetters: DeadLetter[] }): DeadSummary[] {
  return result.deadLetters.map((d) => ({
    stage: d.stage,
    message: d.error.message,
    attempts: d.attempts,
    record: d.record,
  }));
}

/** JSON text with object keys sorted, so that equal values give equal text. */
export function canonical(value: unknown): string {
  return JSON.stringify(
    value,
    (_k, v: unknown) =>
      typeof v === "object" && v !== null && !Array.isArray(v)
        ? Object.fromEntries(Object.entries(v).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)))
        : v,
  );
}

/** A copy sorted by canonical JSON: for outputs whose order across keys or instances is free. */
export function sorted<T>(items: readonly T[]): T[] {
  const keyed = items.map((item) => [canonical(item), item] as const);
  keyed.sort(([x], [y]) => (x < y ? -1 : x > y ? 1 : 0));
  return keyed.map(([, item]) => item);
}

/** Output records grouped by key (`""` when none), each group in arrival order. */
export function byKey<T>(records: readonly StreamRecord<T>[]): Record<string, StreamRecord<T>[]> {
  const groups: Record<string, StreamRecord<T>[]> = {};
  for (const r of records) (groups[r.key ?? ""] ??= []).push(r);
  return groups;
}

/** A key of exactly `bytes` ASCII characters (a "huge key"). */
export function hugeKey(bytes = 100_000, fill = "k"): string {
  return fill.repeat(bytes);
}

/**
 * Pipeline options under which only the `{ watermark }` markers of the input move event time: the
 * source's own bounded out-of-orderness (max ts − this) stays far behind every timestamp used.
 */
export const MARKERS_ONLY = { outOfOrdernessMs: 1e12 } as const;

/** `value` after a JSON round trip: collect() stores records as JSON, so NaN reads back as null. */
export function viaJson<T>(value: T): T {
  return JSON.parse(JSON.stringify(value));
}
