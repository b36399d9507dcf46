// BSON values ↔ what crosses a worker boundary. Driver classes (ObjectId, Decimal128, Long…) lose
// their prototype in a structured clone, so documents read from MongoDB are turned into plain
// values, and positions are kept as relaxed Extended JSON (a JSON value that round-trips).
import { type BSON, mongodbLoaded } from "../../stores/mongo/_deps.ts";

type BsonLike = { _bsontype: string; toString(): string };

const MAX_SAFE = BigInt(Number.MAX_SAFE_INTEGER);

/**
 * A plain, structured-cloneable copy of a BSON value: ObjectId → 24-char hex string,
 * Decimal128 → string, Long → number (bigint past 2^53), Binary → Uint8Array, Timestamp →
 * `{ t, i }`, others → relaxed Extended JSON. Dates, strings, numbers, arrays and objects stay.
 */
export function toPlain(value: unknown): unknown {
  if (value === null || typeof value !== "object") return value;
  if (value instanceof Date || value instanceof Uint8Array) return value;
  if (Array.isArray(value)) return value.map(toPlain);
  const type = (value as Partial<BsonLike>)._bsontype;
  if (typeof type === "string") return bsonToPlain(value as BsonLike, type);
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value)) out[k] = toPlain(v);
  return out;
}

function bsonToPlain(value: BsonLike, type: string): unknown {
  switch (type) {
    case "ObjectId":
    case "ObjectID":
      return (value as unknown as { toHexString(): string }).toHexString();
    case "Decimal128":
      return value.toString();
    case "Long": {
      const big = BigInt(value.toString());
      return big <= MAX_SAFE && big >= -MAX_SAFE ? Number(big) : big;
    }
    case "Int32":
    case "Double":
      return (value as unknown as { valueOf(): number }).valueOf();
    case "Binary": {
      const b = value as unknown as { buffer: Uint8Array; position: number };
      return b.buffer.slice(0, b.position);
    }
    case "Timestamp": {
      const t = value as unknown as { t: number; i: number };
      return { t: t.t, i: t.i };
    }
    default:
      return mongodbLoaded().BSON.EJSON.serialize(value, { relaxed: true });
  }
}

/** A BSON value as relaxed Extended JSON (`42`, `{ $oid: "…" }`, `{ $date: "…" }`). */
export function toEjson(value: unknown): unknown {
  return mongodbLoaded().BSON.EJSON.serialize({ v: value }, { relaxed: true }).v;
}

/** The BSON value of relaxed Extended JSON; a `Date` is taken as it is. */
export function fromEjson(value: unknown): unknown {
  if (value instanceof Date) return value;
  return mongodbLoaded().BSON.EJSON.deserialize({ v: value } as BSON.Document, { relaxed: true }).v;
}

/** Event time of a BSON value, or `undefined` when it has none (Date, number, ObjectId, ISO string). */
export function timeOf(value: unknown): number | undefined {
  if (value instanceof Date) return value.getTime();
  if (typeof value === "number" && Number.isFinite(value)) return value;
  if (typeof value === "string") {
    const t = Date.parse(value);
    return Number.isNaN(t) ? undefined : t;
  }
  const type = (value as Partial<BsonLike> | null)?._bsontype;
  if (type === "ObjectId" || type === "ObjectID") {
    return (value as { getTimestamp(): Date }).getTimestamp().getTime();
  }
  return undefined;
}

/** A key string for a document id: ObjectId → hex, strings as they are, others as EJSON text. */
export function idKey(id: unknown): string {
  if (typeof id === "string") return id;
  const plain = toPlain(id);
  return typeof plain === "string" ? plain : JSON.stringify(toEjson(id));
}
