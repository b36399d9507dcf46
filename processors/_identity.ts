// identity(): a canonical, collision-free string for a value, so that dedupe, distinctCount and
// topK can use it as a map key. Two values get the same identity exactly when their structured
// clones are deep-equal, numbers compared with SameValueZero (as Map and Set keys are):
//
// - NaN equals NaN; 0 equals -0; Infinity, -Infinity, NaN and null are all different.
// - undefined ≠ null; a missing property ≠ a property set to undefined; an array hole ≠ undefined.
// - 1 ≠ 1n ≠ "1" ≠ new Number(1); a Date is its time (invalid dates are all alike); typed arrays
//   compare by type and bytes (a Uint8Array ≠ an Int8Array with the same bytes ≠ an ArrayBuffer
//   with them; in a Float64Array -0 and 0 differ); an Error is its name and message.
// - Object keys in any order give the same identity (sorted by UTF-16 code units); only own
//   enumerable string keys count, as in structured clone; a class instance is encoded like its
//   structured clone (a plain object), so inline and workers modes agree.
// - Map entries and Set elements in any insertion order give the same identity.
// - A cycle, a function or a symbol throws a TypeError (structured clone rejects the last two).
//
// Grammar (each form is self-delimiting, so concatenations decode unambiguously):
//   top-level string: "s" + the string itself (keeps string identities in string order)
//   u undefined | h array hole | l null | t true | f false
//   d<String(n)> number (-0 written as 0) | b<digits> bigint | "…" string (JSON-quoted)
//   [e,e] array | {"k":e,"k":e} object | D<ms> Date | R"src""flags" RegExp
//   E"name""message" Error (name and message only) | N<e> boxed primitive
//   M{e:e,e:e} Map | S[e,e] Set
//   A<hex> ArrayBuffer | V"Ctor"<hex> typed array or DataView (its bytes)
import { isPlainObject } from "./_fields.ts";

const HEX = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, "0"));

function hex(bytes: Uint8Array): string {
  let out = "";
  for (const b of bytes) out += HEX[b];
  return out;
}

const byText = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);

function encode(value: unknown, path: Set<object>): string {
  switch (typeof value) {
    case "undefined":
      return "u";
    case "boolean":
      return value ? "t" : "f";
    case "number":
      return value === 0 ? "d0" : `d${String(value)}`;
    case "bigint":
      return `b${String(value)}`;
    case "string":
      return JSON.stringify(value);
    case "function":
    case "symbol":
      throw new TypeError(`Cannot identify value: a ${typeof value} is not structured-cloneable`);
  }
  if (value === null) return "l";
  const object = value as object;
  if (path.has(object)) throw new TypeError("Cannot identify value: it contains a cycle");
  path.add(object);
  try {
    return encodeObject(object, path);
  } finally {
    path.delete(object);
  }
}

function encodeObject(value: object, path: Set<object>): string {
  if (Array.isArray(value)) {
    const parts: string[] = [];
    for (let i = 0; i < value.length; i++) parts.push(i in value ? encode(value[i], path) : "h");
    return `[${parts.join(",")}]`;
  }
  if (isPlainObject(value)) return encodeFields(value, path);
  if (value instanceof Date) return `D${value.getTime()}`;
  if (value instanceof RegExp) {
    return `R${JSON.stringify(value.source)}${JSON.stringify(value.flags)}`;
  }
  if (value instanceof Error) {
    return `E${JSON.stringify(value.name)}${JSON.stringify(value.message)}`;
  }
  if (
    value instanceof Number || value instanceof String || value instanceof Boolean ||
    value instanceof BigInt
  ) {
    return `N${encode(value.valueOf(), path)}`;
  }
  if (value instanceof Map) {
    const entries = [...value].map(([k, v]) => [encode(k, path), encode(v, path)] as const);
    entries.sort(([a], [b]) => byText(a, b));
    return `M{${entries.map(([k, v]) => `${k}:${v}`).join(",")}}`;
  }
  if (value instanceof Set) {
    const items = [...value].map((v) => encode(v, path)).sort(byText);
    return `S[${items.join(",")}]`;
  }
  if (value instanceof ArrayBuffer) return `A${hex(new Uint8Array(value))}`;
  if (ArrayBuffer.isView(value)) {
    const bytes = new Uint8Array(value.buffer, value.byteOffset, value.byteLength);
    return `V${JSON.stringify(value.constructor.name)}${hex(bytes)}`;
  }
  return encodeFields(value as Record<string, unknown>, path);
}

function encodeFields(value: Record<string, unknown>, path: Set<object>): string {
  const keys = Object.keys(value).sort(byText);
  return `{${keys.map((k) => `${JSON.stringify(k)}:${encode(value[k], path)}`).join(",")}}`;
}

/**
 * A canonical string identity for a structured-cloneable value: equal exactly when the values are
 * deep-equal (numbers by SameValueZero, object keys and Map/Set contents in any order). See the
 * file header for the full rules and the grammar.
 *
 * @throws {TypeError} When the value contains a cycle, a function or a symbol.
 */
export function identity(value: unknown): string {
  return typeof value === "string" ? `s${value}` : encode(value, new Set());
}
