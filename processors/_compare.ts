// Record ordering for sort(): parse sort keys ("-price", "$ts", { field, order }) and build a
// stable comparator in which missing, null and NaN values always sort last.
import type { StreamRecord } from "../actors/record.ts";
import { getField } from "./_fields.ts";
import { identity } from "./_identity.ts";

/** One sort key in wire form. */
export type SortKeySpec = string | { field: string; order?: "asc" | "desc" };

type Extract = (record: StreamRecord<unknown>) => unknown;

function parse(spec: SortKeySpec): [Extract, number] {
  const raw = typeof spec === "string" ? spec.replace(/^-/, "") : spec.field;
  const desc = typeof spec === "string" ? spec.startsWith("-") : spec.order === "desc";
  const extract: Extract = raw === "$ts"
    ? (r) => r.ts
    : raw === "$key"
    ? (r) => r.key
    : (r) => getField(r.value, raw);
  return [extract, desc ? -1 : 1];
}

const TYPE_RANK: Record<string, number> = { number: 0, bigint: 0, string: 1, boolean: 2 };

function isMissing(v: unknown): boolean {
  return v === undefined || v === null || (typeof v === "number" && Number.isNaN(v));
}

/** Compares two present values: numbers, then strings, then booleans, then anything else. */
function compareValues(a: unknown, b: unknown): number {
  const ra = TYPE_RANK[typeof a] ?? 3, rb = TYPE_RANK[typeof b] ?? 3;
  if (ra !== rb) return ra - rb;
  if (ra === 3) [a, b] = [identity(a), identity(b)];
  return (a as number) < (b as number) ? -1 : (a as number) > (b as number) ? 1 : 0;
}

/** A comparator over records for the given keys (first key first). */
export function comparator(
  keys: readonly SortKeySpec[],
): (a: StreamRecord<unknown>, b: StreamRecord<unknown>) => number {
  const parsed = keys.map(parse);
  return (a, b) => {
    for (const [extract, dir] of parsed) {
      const va = extract(a), vb = extract(b);
      const ma = isMissing(va), mb = isMissing(vb);
      if (ma || mb) {
        if (ma !== mb) return ma ? 1 : -1;
        continue;
      }
      const c = compareValues(va, vb);
      if (c !== 0) return c * dir;
    }
    return 0;
  };
}
