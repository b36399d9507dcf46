// Small helpers the benchmarks share: flags, medians, timing, and the generator's events made in
// this thread (the input a baseline gets ready-made).
import type { StageContext, StreamRecord } from "../actors/mod.ts";
import {
  type EcommerceEvent,
  type GeneratorOptions,
  generatorSource,
} from "../connectors/generator/mod.ts";

/** The value after `--name` on the command line, if any. */
export function flag(name: string): string | undefined {
  const i = Deno.args.indexOf(`--${name}`);
  return i < 0 ? undefined : Deno.args[i + 1];
}

/** A positive whole number from `--name`, or `fallback`; a bad one throws a RangeError. */
export function intFlag(name: string, fallback: number): number {
  const raw = flag(name);
  const n = raw === undefined ? fallback : Number(raw);
  if (!Number.isInteger(n) || n < 1) throw new RangeError(`Cannot read --${name}: ${raw}`);
  return n;
}

/** The median of some numbers (the upper one of an even count). */
export const median = (xs: number[]): number =>
  [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

/** Seconds `fn` took. */
export async function timed(fn: () => Promise<unknown>): Promise<number> {
  const started = performance.now();
  await fn();
  return (performance.now() - started) / 1000;
}

/** Every event the generator makes for `options`, made in this thread. */
export async function generatedEvents(
  options: GeneratorOptions,
): Promise<StreamRecord<EcommerceEvent>[]> {
  const parsed = generatorSource.config.safeParse(options);
  if (!parsed.success) throw new Error("Cannot configure the generator");
  const ctx = { instance: 0, parallelism: 1, now: () => Date.now() } as StageContext<
    EcommerceEvent
  >;
  const source = await generatorSource.open(parsed.data, ctx);
  const out: StreamRecord<EcommerceEvent>[] = [];
  const signal = new AbortController().signal;
  for (;;) {
    const batch = await source.pull({ max: 10_000, signal }, ctx);
    if (!batch) return out;
    out.push(...batch.records);
  }
}
