// Incremental reads of a collection by a monotonically increasing field: each pull queries the
// documents after the last one handed out, sorted by (field, _id), so documents sharing a field
// value are neither skipped nor repeated across pulls.
import type { StreamRecord } from "../../actors/record.ts";
import type { PullOptions, SourceBatch } from "../../actors/stage.ts";
import type { Collection, Document } from "../../stores/mongo/_deps.ts";
import { fromEjson, idKey, timeOf, toEjson, toPlain } from "./_bson.ts";
import { isTransient } from "./_client.ts";
import { sleep } from "../../actors/_sleep.ts";

/** Where a query reader is: after field value `v` (and, among equal values, after `_id` `id`). */
export interface QueryPosition {
  /** The field's last value, relaxed Extended JSON. */
  v: unknown;
  /** The last document's `_id`, relaxed Extended JSON; absent when starting from `after`. */
  id?: unknown;
}

/** Settings of a {@linkcode QueryReader}. */
export interface QueryReaderOptions {
  field: string;
  batchSize: number;
  pollMs: number;
  follow: boolean;
  filter?: Document;
  tsField?: string;
  headers: Record<string, string>;
  now(): number;
}

/** The value at a dotted path of a document. */
export function valueAt(doc: Document, path: string): unknown {
  let at: unknown = doc;
  for (const part of path.split(".")) {
    if (at === null || typeof at !== "object") return undefined;
    at = (at as Document)[part];
  }
  return at;
}

/** Reads a collection in (field, _id) order, starting after a position. */
export class QueryReader {
  readonly #collection: Collection<Document>;
  readonly #o: QueryReaderOptions;
  #position: QueryPosition | undefined;
  #idleUntil = 0;

  constructor(
    collection: Collection<Document>,
    options: QueryReaderOptions,
    start: QueryPosition | undefined,
  ) {
    this.#collection = collection;
    this.#o = options;
    this.#position = start;
  }

  #query(): Document {
    const { field, filter } = this.#o;
    const p = this.#position;
    let after: Document = {};
    if (p) {
      const v = fromEjson(p.v);
      after = p.id === undefined
        ? { [field]: { $gt: v } }
        : { $or: [{ [field]: { $gt: v } }, { [field]: v, _id: { $gt: fromEjson(p.id) } }] };
    }
    if (!filter || Object.keys(filter).length === 0) return after;
    return p ? { $and: [filter, after] } : filter;
  }

  #record(doc: Document): StreamRecord<Document> {
    const id = idKey(doc._id);
    const { field, tsField } = this.#o;
    const own = valueAt(doc, field);
    const ts = tsField !== undefined ? timeOf(valueAt(doc, tsField)) : typeof own === "object" // a Date or an ObjectId carries a time; a counter does not
      ? timeOf(own)
      : undefined;
    return {
      key: id,
      value: toPlain(doc) as Document,
      ts: ts ?? this.#o.now(),
      headers: { ...this.#o.headers, "mongo.id": id },
    };
  }

  /** The next documents after the position, or an empty batch while there are none. */
  async pull({ max, signal }: PullOptions): Promise<SourceBatch<Document> | null> {
    const wait = this.#idleUntil - Date.now();
    if (wait > 0) await sleep(wait, signal);
    if (signal.aborted) return { records: [] };
    let docs: Document[];
    try {
      docs = await this.#collection
        .find(this.#query(), {
          sort: { [this.#o.field]: 1, _id: 1 },
          limit: Math.max(1, Math.min(max, this.#o.batchSize)),
        })
        .toArray();
    } catch (error) {
      if (!isTransient(error)) throw error;
      this.#idleUntil = Date.now() + this.#o.pollMs;
      return { records: [] };
    }
    if (docs.length === 0) {
      if (!this.#o.follow) return null;
      this.#idleUntil = Date.now() + this.#o.pollMs;
      return { records: [] };
    }
    this.#idleUntil = 0;
    const last = docs[docs.length - 1]!;
    this.#position = { v: toEjson(valueAt(last, this.#o.field)), id: toEjson(last._id) };
    return { records: docs.map((d) => this.#record(d)), position: this.#position };
  }
}
