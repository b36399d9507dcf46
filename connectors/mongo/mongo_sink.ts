/**
 * `mongoSink`: writes records to a MongoDB collection, one acknowledged `bulkWrite` per batch.
 *
 * @module
 */
import { z } from "../../actors/_deps.ts";
import { parseConfig } from "../../actors/_config.ts";
import { RetriableError } from "../../actors/errors.ts";
import type { StreamRecord } from "../../actors/record.ts";
import { defineSink, type SinkDefinition } from "../../actors/stage.ts";
import type { StageOptions, StageRef } from "../../actors/stage_ref.ts";
import {
  type AnyBulkWriteOperation,
  type Document,
  loadMongodb,
} from "../../stores/mongo/_deps.ts";
import { connectionFields, createClient, isTransient } from "./_client.ts";
import { oneLine } from "../../stores/_faults.ts";
import { DocumentError, documentOf, toOperation } from "./_write_ops.ts";
import { type MongoConnectionOptions, MONGODB_ENV, mongoPermissions } from "./mongo_connection.ts";

/** Write concern of the sink's writes. */
export interface MongoWriteConcern {
  /** Acknowledgement: a number of members or `"majority"`. Default: the server's (`1`). */
  w?: number | "majority";
  /** Whether the write must be in the journal before it is acknowledged. */
  j?: boolean;
  /** Bound on waiting for the write concern, ms. */
  wtimeoutMs?: number;
}

/** Options of {@linkcode mongoSink}. */
export interface MongoSinkOptions extends MongoConnectionOptions {
  /**
   * `"upsert"` (default): replace (or update) the document with the record's key, inserting it
   * when missing, so a replayed batch leaves the same documents (idempotent). `"insert"`: insert
   * every record; a key that exists already fails that record alone (dead-lettered).
   */
  mode?: "upsert" | "insert";
  /**
   * Field that identifies a document. Default `"_id"`. A value without it takes the record's
   * `key` there; in upsert mode a record with neither is dead-lettered.
   */
  key?: string;
  /** In upsert mode: `"replace"` the whole document (default) or `"set"` the record's fields. */
  update?: "replace" | "set";
  /**
   * Ordered bulk writes (default true): writes apply in record order, so the last record of a key
   * wins. `false` lets the server apply them in any order (faster, for distinct keys).
   */
  ordered?: boolean;
  /** Write concern; `write` resolves once the server acknowledged with it. Default: the server's. */
  writeConcern?: MongoWriteConcern;
}

/** {@linkcode MongoSinkOptions} as validated, with defaults applied. */
export type MongoSinkConfig =
  & Omit<Required<MongoSinkOptions>, "writeConcern">
  & Pick<MongoSinkOptions, "writeConcern">;

const sinkConfig: z.ZodType<MongoSinkConfig, z.ZodTypeDef, MongoSinkOptions> = z.object({
  ...connectionFields,
  mode: z.enum(["upsert", "insert"]).default("upsert"),
  key: z.string().min(1).regex(/^[^$]/, "must not start with $").default("_id"),
  update: z.enum(["replace", "set"]).default("replace"),
  ordered: z.boolean().default(true),
  writeConcern: z.object({
    w: z.union([z.number().int().safe().min(0), z.literal("majority")]).optional(),
    j: z.boolean().optional(),
    wtimeoutMs: z.number().int().safe().positive().optional(),
  }).strict().optional(),
}).strict();

/** Largest BSON document the server takes (its `maxBsonObjectSize`). */
const MAX_DOCUMENT_BYTES = 16 * 1024 * 1024;

/** What is known of a batch between attempts: written and refused records, by index. */
interface Progress {
  done: Set<number>;
  dead: Map<number, Error>;
}

/**
 * The `mongo-sink` definition: config {@linkcode MongoSinkConfig}. Prefer the
 * {@linkcode mongoSink} builder, which also narrows the worker's permissions to the server.
 *
 * @example
 * ```ts
 * import { mongoSinkStage } from "@sluice/sluice";
 * import assert from "node:assert/strict";
 *
 * assert.equal(mongoSinkStage.kind, "sink");
 * ```
 */
export const mongoSinkStage: SinkDefinition<unknown, MongoSinkConfig> = defineSink({
  name: "mongo-sink",
  config: sinkConfig,
  permissions: { net: true, env: [...MONGODB_ENV], sys: ["osRelease"] },
  async open(config, ctx) {
    const { BSON, MongoBulkWriteError, MongoInvalidArgumentError } = await loadMongodb();
    const client = await createClient(config);
    // A stage the runtime kills is not closed: the kill closes the client, and no write after it
    // opens it again (the driver reconnects a closed client on use).
    let killed = false;
    ctx.signal.addEventListener("abort", () => {
      killed = true;
      void client.close().catch(() => {});
    }, { once: true });
    const collection = client.db(config.db).collection(config.collection);
    const where = `Cannot write to MongoDB collection "${config.db}.${config.collection}"`;
    const wc = config.writeConcern;
    const options = {
      ordered: config.ordered,
      writeConcern: wc && { w: wc.w, journal: wc.j, wtimeoutMS: wc.wtimeoutMs },
    };
    // The runtime retries a failed batch with the same array: resume where the last attempt was.
    const progress = new WeakMap<StreamRecord<unknown>[], Progress>();

    /** Writes the records at `pending`, marking each written or refused. */
    async function attempt(
      ops: Map<number, AnyBulkWriteOperation<Document>>,
      pending: number[],
      p: Progress,
    ): Promise<number[]> {
      if (killed) throw new Error(`${where}: the sink was stopped`);
      try {
        await collection.bulkWrite(pending.map((i) => ops.get(i)!), options);
        for (const i of pending) p.done.add(i);
        return [];
      } catch (error) {
        if (error instanceof MongoBulkWriteError && !isTransient(error)) {
          const list = [error.writeErrors].flat();
          if (list.length > 0 && !error.result?.getWriteConcernError()) {
            let first = pending.length;
            for (const w of list) {
              first = Math.min(first, w.index);
              const code = `E_MONGO_${w.code}`;
              p.dead.set(
                pending[w.index]!,
                new DocumentError(`${where}: ${w.errmsg} (code ${w.code})`, code),
              );
            }
            // Ordered: everything before the first error was written, nothing after it was tried.
            const written = config.ordered ? pending.slice(0, first) : pending;
            for (const i of written) if (!p.dead.has(i)) p.done.add(i);
            return config.ordered ? pending.slice(first + 1) : [];
          }
        }
        if (
          error instanceof MongoInvalidArgumentError &&
          /larger than the maximum/.test(error.message)
        ) {
          const big = pending.filter((i) =>
            BSON.calculateObjectSize(documentOf(ops.get(i)!)) > MAX_DOCUMENT_BYTES
          );
          for (const i of big) {
            p.dead.set(
              i,
              new DocumentError(`${where}: the document is over 16 MiB`, "E_MONGO_10334"),
            );
          }
          if (big.length > 0) return pending.filter((i) => !p.dead.has(i));
        }
        const message = `${where}: ${oneLine(error)}`;
        if (isTransient(error)) throw new RetriableError(message, { cause: error });
        throw new Error(message, { cause: error });
      }
    }

    return {
      async write(records, ctx) {
        const p = progress.get(records) ?? { done: new Set(), dead: new Map() };
        progress.set(records, p);
        const ops = new Map<number, AnyBulkWriteOperation<Document>>();
        let pending: number[] = [];
        records.forEach((record, i) => {
          if (p.done.has(i) || p.dead.has(i)) return;
          const op = toOperation(record, config, where);
          if (op instanceof DocumentError) p.dead.set(i, op);
          else {
            ops.set(i, op);
            pending.push(i);
          }
        });
        while (pending.length > 0) pending = await attempt(ops, pending, p);
        progress.delete(records);
        for (const [i, error] of p.dead) ctx.deadLetter(records[i]!, error);
      },
      async close() {
        await client.close();
      },
    };
  },
});

/**
 * A sink that writes records to a MongoDB collection. Each batch becomes one `bulkWrite`
 * (`replaceOne`/`updateOne` with `upsert` by key, or `insertOne`), and `write` resolves once the
 * server acknowledged it, so records are acked upstream only when they are stored. In upsert
 * mode a replayed batch leaves the same documents: with an at-least-once source the collection
 * ends up exactly-once.
 *
 * Failures: a server that is down or unreachable makes `write` throw a
 * {@linkcode RetriableError}, so the pipeline backs up and the batch is retried until it
 * succeeds. A document the server refuses (duplicate key in insert mode, over 16 MiB, an `_id`
 * that would change) is dead-lettered directly with the server's message and code
 * (`E_MONGO_11000`, …) while the rest of the batch is written; a value that is not an object, or
 * has no key to upsert by, is dead-lettered too. Nothing is dropped silently. A retried batch
 * resumes after the records already written, so an insert-mode retry does not report them as
 * duplicates.
 *
 * @param options Connection, collection and write settings; see {@linkcode MongoSinkOptions}.
 * @param stageOptions Stage options; `permissions` defaults to {@linkcode mongoPermissions}.
 * @returns A sink reference for a pipeline.
 * @throws {ConfigError} When an option is invalid, naming its path.
 *
 * @example Upsert orders by id
 * ```ts
 * import { mongoSink } from "@sluice/sluice";
 * import assert from "node:assert/strict";
 *
 * const sink = mongoSink({ url: "mongodb://127.0.0.1:27017", db: "shop", collection: "orders" });
 * assert.equal(sink.kind, "sink");
 * assert.throws(
 *   () => mongoSink({ url: "http://x", db: "shop", collection: "orders" }),
 *   /config\.url/,
 * );
 * ```
 */
export function mongoSink<T = unknown>(
  options: MongoSinkOptions,
  stageOptions: StageOptions = {},
): StageRef<T, never> {
  parseConfig(mongoSinkStage, stageOptions.name ?? mongoSinkStage.name, options);
  return {
    kind: "sink",
    module: import.meta.url,
    export: "mongoSinkStage",
    config: options,
    options: { permissions: mongoPermissions(options.url), ...stageOptions },
  };
}
