// Value conversions for transform(): strict, so that a bad value fails the record with a reason
// instead of turning into NaN or a silent default.

/** Converts one present, non-null field value; throws a TypeError naming the field. */
export function convertValue(
  field: string,
  value: unknown,
  type: "number" | "string" | "boolean" | "date",
): unknown {
  const out = CONVERTERS[type](value);
  if (out === undefined) {
    throw new TypeError(
      `Cannot convert field "${field}" to ${type}: ${describe(value)} is not a valid ${type}`,
    );
  }
  return out;
}

const CONVERTERS: Record<"number" | "string" | "boolean" | "date", (value: unknown) => unknown> = {
  number(value) {
    if (typeof value === "number") return Number.isFinite(value) ? value : undefined;
    if (typeof value === "boolean") return value ? 1 : 0;
    if (typeof value === "bigint") return Number(value);
    if (typeof value === "string" && value.trim() !== "") {
      const n = Number(value.trim());
      return Number.isFinite(n) ? n : undefined;
    }
    return undefined;
  },
  string(value) {
    if (typeof value === "string") return value;
    if (typeof value === "number") return Number.isFinite(value) ? String(value) : undefined;
    if (typeof value === "boolean" || typeof value === "bigint") return String(value);
    if (value instanceof Date) {
      return Number.isNaN(value.getTime()) ? undefined : value.toISOString();
    }
    return undefined;
  },
  boolean(value) {
    if (typeof value === "boolean") return value;
    if (value === 1 || value === 0) return value === 1;
    if (typeof value === "string") {
      const s = value.trim().toLowerCase();
      if (["true", "1", "yes", "y", "on"].includes(s)) return true;
      if (["false", "0", "no", "n", "off"].includes(s)) return false;
    }
    return undefined;
  },
  date(value) {
    if (value instanceof Date) return Number.isNaN(value.getTime()) ? undefined : value.getTime();
    if (typeof value === "number") return Number.isFinite(value) ? value : undefined;
    if (typeof value === "string" && value.trim() !== "") {
      const s = value.trim();
      const ms = /^-?\d+(\.\d+)?$/.test(s) ? Number(s) : Date.parse(s);
      return Number.isFinite(ms) ? ms : undefined;
    }
    return undefined;
  },
};

function describe(value: unknown): string {
  if (typeof value === "string") {
    return JSON.stringify(value.length > 40 ? `${value.slice(0, 40)}…` : value);
  }
  if (typeof value === "number") return String(value);
  if (Array.isArray(value)) return "an array";
  return typeof value === "object" ? "an object" : typeof value;
}
