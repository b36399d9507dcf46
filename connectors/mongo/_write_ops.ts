// Records → bulkWrite operations of the MongoDB sink, and the errors of single documents.
import type { StreamRecord } from "../../actors/record.ts";
import type { AnyBulkWriteOperation, Document } from "../../stores/mongo/_deps.ts";

/** How the sink turns records into writes. */
export interface WriteMode {
  mode: "upsert" | "insert";
  key: string;
  update: "replace" | "set";
}

/** A write the server (or the driver) refused for one document. */
export class DocumentError extends Error {
  /** `E_MONGO_<server code>` or `E_MONGO_DOCUMENT` for documents refused before sending. */
  readonly code: string;

  constructor(message: string, code: string) {
    super(message);
    this.name = "DocumentError";
    this.code = code;
  }
}

function isDocument(value: unknown): value is Document {
  if (value === null || typeof value !== "object" || Array.isArray(value)) return false;
  const proto = Object.getPrototypeOf(value);
  return proto === Object.prototype || proto === null;
}

/**
 * The bulk operation for one record, or a {@linkcode DocumentError} when the record cannot be a
 * document (not an object, no key to upsert by).
 */
export function toOperation(
  record: StreamRecord<unknown>,
  m: WriteMode,
  where: string,
): AnyBulkWriteOperation<Document> | DocumentError {
  const value = record.value;
  if (!isDocument(value)) {
    const kind = value === null ? "null" : Array.isArray(value) ? "an array" : typeof value;
    return new DocumentError(
      `${where}: the record value is ${kind}, not an object`,
      "E_MONGO_DOCUMENT",
    );
  }
  const own = value[m.key];
  const keyValue = own ?? record.key;
  let doc: Document = value;
  if (own === undefined && keyValue !== undefined) {
    doc = { [m.key]: keyValue, ...value };
    doc[m.key] = keyValue;
  }
  if (m.mode === "insert") return { insertOne: { document: doc } };
  if (keyValue === undefined) {
    return new DocumentError(
      `${where}: the record has no key and its value no "${m.key}" field to upsert by`,
      "E_MONGO_DOCUMENT",
    );
  }
  const filter = { [m.key]: keyValue };
  if (m.update === "set") {
    const { _id: _ignored, ...fields } = doc;
    if (Object.keys(fields).length > 0) {
      return { updateOne: { filter, update: { $set: fields }, upsert: true } };
    }
  }
  return { replaceOne: { filter, replacement: doc, upsert: true } };
}

/** The document an operation writes (to measure it). */
export function documentOf(op: AnyBulkWriteOperation<Document>): Document {
  if ("insertOne" in op) return op.insertOne.document;
  if ("replaceOne" in op) return op.replaceOne.replacement;
  if ("updateOne" in op) return op.updateOne.update as Document;
  return {};
}
