// The machinery behind aggregate_ops.ts: the wire schema of aggregate specs (functions serialised
// as InlineFn), the build-time conversion to it, and the incremental accumulators.
import { z } from "../actors/_deps.ts";
import { compileFn, type InlineFn, inlineFn } from "../actors/inline_fn.ts";
import type { StreamRecord } from "../actors/record.ts";
import { fieldSchema, inlineFnSchema, jsonSchema } from "./_config.ts";
import { getField } from "./_fields.ts";
import { identity } from "./_identity.ts";
import type { AggregateSpecs, WireAggregateSpec } from "./aggregate_ops.ts";

/** zod schema of one aggregate spec in wire form. */
export const aggregateSpecSchema: z.ZodType<WireAggregateSpec> = z.discriminatedUnion("op", [
  z.object({ op: z.literal("count"), field: fieldSchema.optional() }).strict(),
  z.object({ op: z.enum(["sum", "avg", "min", "max"]), field: fieldSchema }).strict(),
  z.object({ op: z.literal("distinctCount"), field: fieldSchema }).strict(),
  z.object({
    op: z.literal("topK"),
    field: fieldSchema,
    k: z.number().int().safe().min(1).max(1000),
    weight: fieldSchema.optional(),
  }).strict(),
  z.object({
    op: z.literal("reduce"),
    fn: inlineFnSchema,
    initial: jsonSchema,
    merge: inlineFnSchema.optional(),
    field: fieldSchema.optional(),
  }).strict(),
]);

type WireSpec = WireAggregateSpec;

/** zod schema of named specs; at least one. */
export const aggregateSpecsSchema: z.ZodType<Record<string, WireAggregateSpec>> = z.record(
  z.string().min(1),
  aggregateSpecSchema,
).refine(
  (specs) => Object.keys(specs).length > 0,
  "Expected at least one aggregate",
);

/** Serialises the functions of `reduce` specs; everything else is left for zod to check. */
export function toWireSpecs(specs: AggregateSpecs): Record<string, unknown> {
  if (typeof specs !== "object" || specs === null) return specs;
  const out: Record<string, unknown> = {};
  for (const [name, spec] of Object.entries(specs)) {
    if (spec?.op !== "reduce") {
      out[name] = spec;
      continue;
    }
    const { fn, merge, ...rest } = spec;
    const wire: Record<string, unknown> = { ...rest, fn: toInline(fn, `reduce "${name}"`) };
    if (merge !== undefined) wire.merge = toInline(merge, `merge "${name}"`);
    out[name] = wire;
  }
  return out;
}

function toInline(fn: unknown, what: string): unknown {
  return typeof fn === "function" ? inlineFn(fn, what) : fn;
}

/** Accumulators of one key (and window), by aggregate name; plain JSON, cheap to snapshot. */
export type Accumulators = Record<string, unknown>;

/** Incremental aggregation over named specs. */
export interface Aggregator {
  /** Fresh accumulators. */
  init(): Accumulators;
  /** Adds one record. All-or-nothing: when a reducer throws, `acc` is unchanged. */
  add(acc: Accumulators, record: StreamRecord<unknown>): void;
  /** Adds `from` into `into` (session windows merging). */
  merge(into: Accumulators, from: Accumulators): void;
  /** The results, by name. */
  results(acc: Accumulators): Record<string, unknown>;
  /** Adds the results, by name, to `into` (after the fields it has): `results` without a copy. */
  resultsInto(acc: Accumulators, into: Record<string, unknown>): void;
}

interface Op {
  init(): unknown;
  add(acc: unknown, record: StreamRecord<unknown>): unknown;
  merge(a: unknown, b: unknown): unknown;
  result(acc: unknown): unknown;
}

const num = (v: unknown): v is number => typeof v === "number" && Number.isFinite(v);

function numeric(
  field: string,
  step: (acc: number | null, v: number) => number,
  merge: (a: number, b: number) => number,
): Op {
  return {
    init: () => null,
    add: (acc, r) => {
      const v = getField(r.value, field);
      return num(v) ? step(acc as number | null, v) : acc;
    },
    merge: (a, b) => a === null ? b : b === null ? a : merge(a as number, b as number),
    result: (acc) => acc,
  };
}

type Counts = Record<string, [unknown, number]>;

function counting(field: string, weight: string | undefined, k: number): Op {
  return {
    init: () => ({}),
    add: (acc, r) => {
      const v = getField(r.value, field);
      const w = weight === undefined ? 1 : getField(r.value, weight);
      if (v === null || v === undefined || !num(w)) return acc;
      const counts = acc as Counts;
      const id = identity(v);
      const entry = counts[id];
      if (entry) entry[1] += w;
      else counts[id] = [v, w];
      return counts;
    },
    merge: (a, b) => {
      const into = a as Counts;
      for (const [id, [v, n]] of Object.entries(b as Counts)) {
        const entry = into[id];
        if (entry) entry[1] += n;
        else into[id] = [v, n];
      }
      return into;
    },
    result: (acc) =>
      Object.entries(acc as Counts)
        .sort(([ia, [, a]], [ib, [, b]]) => b - a || (ia < ib ? -1 : ia > ib ? 1 : 0))
        .slice(0, k)
        .map(([, [value, count]]) => ({ value, count })),
  };
}

function compileOp(spec: WireSpec): Op {
  switch (spec.op) {
    case "count":
      return {
        init: () => 0,
        add: (acc, r) =>
          spec.field === undefined || getField(r.value, spec.field) != null
            ? (acc as number) + 1
            : acc,
        merge: (a, b) => (a as number) + (b as number),
        result: (acc) => acc,
      };
    case "sum":
      return { ...numeric(spec.field, (a, v) => (a ?? 0) + v, (a, b) => a + b), init: () => 0 };
    case "min":
      return numeric(spec.field, (a, v) => a === null ? v : Math.min(a, v), Math.min);
    case "max":
      return numeric(spec.field, (a, v) => a === null ? v : Math.max(a, v), Math.max);
    case "avg":
      return {
        init: () => [0, 0],
        add: (acc, r) => {
          const v = getField(r.value, spec.field);
          const [s, n] = acc as [number, number];
          return num(v) ? [s + v, n + 1] : acc;
        },
        merge: (a, b) => {
          const [sa, na] = a as [number, number], [sb, nb] = b as [number, number];
          return [sa + sb, na + nb];
        },
        result: (acc) => {
          const [s, n] = acc as [number, number];
          return n === 0 ? null : s / n;
        },
      };
    case "distinctCount": {
      const counts = counting(spec.field, undefined, Infinity);
      return { ...counts, result: (acc) => Object.keys(acc as Counts).length };
    }
    case "topK":
      return counting(spec.field, spec.weight, spec.k);
    case "reduce":
      return compileReduce(spec);
  }
}

function compileReduce(spec: Extract<WireSpec, { op: "reduce" }>): Op {
  type Fn = (acc: unknown, value: unknown, record: StreamRecord<unknown>) => unknown;
  const fn = compileFn<Fn>(spec.fn as InlineFn);
  const merge = spec.merge ? compileFn<(a: unknown, b: unknown) => unknown>(spec.merge) : undefined;
  const field = spec.field;
  return {
    init: () => structuredClone(spec.initial),
    add: (acc, r) => fn(acc, field === undefined ? r.value : getField(r.value, field), r),
    merge: (a, b) => {
      if (!merge) throw new TypeError("Cannot merge reduce accumulators: no merge function");
      return merge(a, b);
    },
    result: (acc) => acc,
  };
}

/** Compiles wire specs once per instance. */
export function compileAggregator(specs: Record<string, WireSpec>): Aggregator {
  const ops = Object.entries(specs)
    .map(([name, spec]) => ({ name, op: compileOp(spec), reduce: spec.op === "reduce" }));
  // Reducers run first: they are the only ops that may throw, so a failure changes nothing.
  const reducers = ops.filter((o) => o.reduce);
  const others = ops.filter((o) => !o.reduce);
  const results = (acc: Accumulators, into: Record<string, unknown>): void => {
    for (const { name, op } of ops) setField(into, name, op.result(acc[name]));
  };
  return {
    init() {
      const acc: Accumulators = {};
      for (const { name, op } of ops) setField(acc, name, op.init());
      return acc;
    },
    add(acc, record) {
      if (reducers.length > 0) {
        const reduced = reducers.map(({ name, op }) => op.add(acc[name], record));
        reducers.forEach(({ name }, i) => (acc[name] = reduced[i]));
      }
      for (const { name, op } of others) acc[name] = op.add(acc[name], record);
    },
    merge(into, from) {
      for (const { name, op } of ops) into[name] = op.merge(into[name], from[name]);
    },
    results(acc) {
      const out: Record<string, unknown> = {};
      results(acc, out);
      return out;
    },
    resultsInto: results,
  };
}

/**
 * `obj[name] = value` as an own property even for `"__proto__"` (which assignment would take as
 * the prototype), like `Object.fromEntries` and object spread.
 */
function setField(obj: Record<string, unknown>, name: string, value: unknown): void {
  if (name !== "__proto__") {
    obj[name] = value;
    return;
  }
  Object.defineProperty(obj, name, { value, writable: true, enumerable: true, configurable: true });
}
