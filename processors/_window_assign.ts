// Window assignment for window(): which windows a timestamp belongs to (tumbling, sliding) and how
// session windows grow and merge. Windows are half-open [start, end): ts == end is the next one.
import type { Accumulators, Aggregator } from "./_aggregator.ts";

/** One open window of one key: bounds, accumulators, and whether it has fired already. */
export interface Win {
  /** Start, inclusive (ms). */
  s: number;
  /** End, exclusive (ms). */
  e: number;
  /** Accumulators. */
  a: Accumulators;
  /** Fired with its current contents (a late update within the allowed lateness re-fires it). */
  f: boolean;
}

/** How windows are laid out. */
export type Layout =
  | { type: "tumbling"; sizeMs: number; offsetMs?: number }
  | { type: "sliding"; sizeMs: number; slideMs: number; offsetMs?: number }
  | { type: "session"; gapMs: number };

const mod = (a: number, b: number): number => ((a % b) + b) % b;

/** The start of the tumbling window holding `t` (its end is `start + sizeMs`). */
export function tumblingStart(layout: { sizeMs: number; offsetMs?: number }, t: number): number {
  return t - mod(t - (layout.offsetMs ?? 0), layout.sizeMs);
}

/** The `[start, end)` bounds of the fixed windows holding `t`, oldest first (not for sessions). */
export function fixedWindows(layout: Layout, t: number): [number, number][] {
  if (layout.type === "tumbling") {
    const start = tumblingStart(layout, t);
    return [[start, start + layout.sizeMs]];
  }
  if (layout.type === "session") throw new TypeError("Cannot assign session windows here");
  const last = t - mod(t - (layout.offsetMs ?? 0), layout.slideMs);
  const out: [number, number][] = [];
  for (let s = last; s > t - layout.sizeMs; s -= layout.slideMs) {
    out.unshift([s, s + layout.sizeMs]);
  }
  return out;
}

/**
 * Adds a record at `t` to the session windows `wins` (mutated): its proto-window `[t, t + gap)`
 * merges with every window it touches, as in Flink. Returns the window that took the record, or
 * `undefined` when the record is late (its proto-window touches nothing and is already expired).
 */
export function addToSession(
  wins: Win[],
  t: number,
  gapMs: number,
  expired: (end: number) => boolean,
  aggregator: Aggregator,
  add: (acc: Accumulators) => void,
): Win | undefined {
  let s = t, e = t + gapMs;
  const touching: Win[] = [];
  for (const w of wins) if (w.s <= e && w.e >= s) touching.push(w);
  if (touching.length === 0 && expired(e)) return undefined;
  const target: Win = touching[0] ?? { s, e, a: aggregator.init(), f: false };
  // Add the record first: a reducer that throws leaves every window as it was.
  const acc = target.a;
  add(acc);
  for (let i = 1; i < touching.length; i++) aggregator.merge(acc, touching[i]!.a);
  for (const w of touching) {
    s = Math.min(s, w.s);
    e = Math.max(e, w.e);
  }
  // Bounds or contents changed: the window fires again (at once when the watermark is past it).
  const merged: Win = { s, e, a: acc, f: false };
  // The windows that did not merge keep their order; the merged one goes last.
  let kept = 0;
  for (const w of wins) if (!touching.includes(w)) wins[kept++] = w;
  wins.length = kept;
  wins.push(merged);
  return merged;
}
