/**
 * `mongoSource`: documents of a MongoDB collection, read incrementally by a monotonically
 * increasing field or from its change stream, with a position that a restarted source resumes
 * from.
 *
 * @module
 */
import { z } from "../../actors/_deps.ts";
import { parseConfig } from "../../actors/_config.ts";
import { defineSource, type SourceDefinition } from "../../actors/stage.ts";
import type { StageOptions, StageRef } from "../../actors/stage_ref.ts";
import { loadMongodb } from "../../stores/mongo/_deps.ts";
import { connectionFields, createClient } from "./_client.ts";
import { type ChangePosition, ChangeReader } from "./_change_reader.ts";
import { PositionStore } from "./_positions.ts";
import { type QueryPosition, QueryReader } from "./_query_reader.ts";
import { type MongoConnectionOptions, MONGODB_ENV, mongoPermissions } from "./mongo_connection.ts";

/** A document as the source hands it out: a plain object (see {@linkcode mongoSource}). */
export type MongoDocument = Record<string, unknown>;

/** Options of {@linkcode mongoSource}. */
export interface MongoSourceOptions extends MongoConnectionOptions {
  /**
   * Field the collection is read by (dotted paths allowed), required unless `changeStream`: its
   * values must only grow as documents are written (a sequence number, an `updatedAt` set by the
   * writer, an ObjectId from one writer). Documents are read sorted by (field, `_id`), after the
   * last one read; an index on `{ field: 1, _id: 1 }` keeps that fast. A document written later
   * with a smaller value than one already read is missed.
   */
  field?: string;
  /**
   * Start after this field value (relaxed Extended JSON: `42`, `"2024-01-01"`,
   * `{ $date: "2024-01-01T00:00:00Z" }`, `{ $oid: "…" }`, or a `Date`). Default: from the first
   * document. A saved position (see `resumeId`) takes precedence.
   */
  after?: unknown;
  /** Most documents per query (and per pull). Default 500. */
  batchSize?: number;
  /** Pause after a query that found nothing new before the next one, ms. Default 1000. */
  pollMs?: number;
  /** Keep polling for new documents (default true); `false` ends the source once it caught up. */
  follow?: boolean;
  /** Query filter the documents must also match (relaxed Extended JSON allowed). Default: all. */
  filter?: Record<string, unknown>;
  /** Field holding the event time (Date, ms number or ISO string). Default: `field` when it holds a Date or an ObjectId, else the time of reading. */
  tsField?: string;
  /**
   * Name under which the source saves its position in `positionsCollection` once the pipeline
   * acked it, and reads it back on open, so a restarted source resumes without loss (records
   * between the last save and the stop are read again: at-least-once). Default: no saving.
   */
  resumeId?: string;
  /** Collection (in `db`) of saved positions. Default `"sluice_positions"`. */
  positionsCollection?: string;
  /**
   * Read the collection's change stream (`collection.watch()`, `fullDocument: "updateLookup"`)
   * instead of querying: inserts, updates and replaces give the document, deletes a `null` value
   * with the id as key; header `mongo.op` names the operation. The position is the resume token.
   * Needs a server that offers change streams (a replica set, or mongo-java-server with its
   * oplog). Default false.
   */
  changeStream?: boolean;
  /** With `changeStream`, aggregation stages that filter events (e.g. `[{ $match: … }]`). */
  pipeline?: Record<string, unknown>[];
}

/** {@linkcode MongoSourceOptions} as validated, with defaults applied. */
export type MongoSourceConfig =
  & Omit<Required<MongoSourceOptions>, "field" | "after" | "filter" | "tsField" | "resumeId">
  & Pick<MongoSourceOptions, "field" | "after" | "filter" | "tsField" | "resumeId">;

const sourceConfig: z.ZodType<MongoSourceConfig, z.ZodTypeDef, MongoSourceOptions> = z.object({
  ...connectionFields,
  field: z.string().min(1).regex(/^[^$]/, "must not start with $").optional(),
  after: z.unknown().optional(),
  batchSize: z.number().int().safe().positive().max(100_000).default(500),
  pollMs: z.number().int().safe().positive().default(1000),
  follow: z.boolean().default(true),
  filter: z.record(z.string(), z.unknown()).optional(),
  tsField: z.string().min(1).optional(),
  resumeId: z.string().min(1).optional(),
  positionsCollection: z.string().min(1).default("sluice_positions"),
  changeStream: z.boolean().default(false),
  pipeline: z.array(z.record(z.string(), z.unknown())).default([]),
}).strict()
  .refine((c) => c.changeStream || c.field !== undefined, {
    message: "is required unless changeStream is true",
    path: ["field"],
  })
  .refine((c) => !c.changeStream || (c.field === undefined && c.after === undefined), {
    message: "field and after do not apply to a change stream",
    path: ["changeStream"],
  });

/**
 * The `mongo-source` definition: config {@linkcode MongoSourceConfig}. Prefer the
 * {@linkcode mongoSource} builder, which also narrows the worker's permissions to the server.
 *
 * @example
 * ```ts
 * import { mongoSourceStage } from "@sluice/sluice";
 * import assert from "node:assert/strict";
 *
 * assert.equal(mongoSourceStage.kind, "source");
 * ```
 */
export const mongoSourceStage: SourceDefinition<MongoDocument | null, MongoSourceConfig> =
  defineSource({
    name: "mongo-source",
    config: sourceConfig,
    permissions: { net: true, env: [...MONGODB_ENV], sys: ["osRelease"] },
    async open(config, ctx) {
      const where = `Cannot read MongoDB collection "${config.db}.${config.collection}"`;
      if (ctx.parallelism > 1) {
        throw new RangeError(`${where}: parallelism is ${ctx.parallelism}, expected 1`);
      }
      const { BSON } = await loadMongodb();
      const client = await createClient(config);
      try {
        const db = client.db(config.db);
        const collection = db.collection(config.collection);
        const store = config.resumeId === undefined
          ? undefined
          : new PositionStore(db.collection(config.positionsCollection), config.resumeId, {
            db: config.db,
            collection: config.collection,
            field: config.field ?? "$changeStream",
          });
        const saved = await store?.load();
        const headers = { "mongo.db": config.db, "mongo.collection": config.collection };
        const common = {
          batchSize: config.batchSize,
          pollMs: config.pollMs,
          tsField: config.tsField,
          headers,
          now: () => ctx.now(),
        };
        let reader: QueryReader | ChangeReader;
        if (config.changeStream) {
          const change = new ChangeReader(
            collection,
            { ...common, pipeline: config.pipeline.map((s) => BSON.EJSON.deserialize(s)), where },
            saved as ChangePosition | undefined,
          );
          await change.open();
          reader = change;
        } else {
          const start = (saved as QueryPosition | undefined) ??
            (config.after === undefined ? undefined : { v: config.after });
          reader = new QueryReader(collection, {
            ...common,
            field: config.field!,
            follow: config.follow,
            filter: config.filter && BSON.EJSON.deserialize(config.filter),
          }, start);
        }
        // A stage the runtime kills is not closed: the kill closes the client, and no pull after
        // it opens it again (the driver reconnects a closed client on use).
        let killed = false;
        ctx.signal.addEventListener("abort", () => {
          killed = true;
          void (async () => {
            if (reader instanceof ChangeReader) await reader.close().catch(() => {});
            await client.close().catch(() => {});
          })();
        }, { once: true });
        return {
          pull: (options) => killed ? null : reader.pull(options),
          async ack(position) {
            if (!killed) await store?.save(position);
          },
          async close() {
            try {
              if (reader instanceof ChangeReader) await reader.close();
            } finally {
              await client.close();
            }
          },
        };
      } catch (error) {
        await client.close().catch(() => {});
        throw error;
      }
    },
  });

/**
 * A source of the documents of a MongoDB collection, keyed by `_id` (ObjectIds as hex strings),
 * with headers `mongo.db`, `mongo.collection`, `mongo.id`. Values are plain objects: ObjectId →
 * hex string, Decimal128 → string, Long → number (bigint past 2^53), Binary → Uint8Array.
 *
 * By default it reads the collection incrementally by `field`: each pull (and only a pull)
 * queries the next documents after the last one read, sorted by (field, `_id`); when none are
 * new it waits `pollMs` before asking again (or ends, with `follow: false`). With
 * `changeStream: true` it reads `collection.watch()` instead. The position of a pull (the last
 * field value and `_id`, or the resume token) reaches `ack` once every sink stored its records;
 * with `resumeId` it is saved then in `sluice_positions` and a restarted source starts after it,
 * so nothing is lost (at-least-once). Without `resumeId`, persist `position` yourself and pass
 * its `v` as `after`. One instance per source (parallelism 1).
 *
 * @param options Connection, collection and read settings; see {@linkcode MongoSourceOptions}.
 * @param stageOptions Stage options; `permissions` defaults to {@linkcode mongoPermissions}.
 * @returns A source reference for a pipeline.
 * @throws {ConfigError} When an option is invalid, naming its path.
 *
 * @example Orders by sequence number, resumable
 * ```ts
 * import { mongoSource } from "@sluice/sluice";
 * import assert from "node:assert/strict";
 *
 * const source = mongoSource({
 *   url: "mongodb://127.0.0.1:27017",
 *   db: "shop",
 *   collection: "orders",
 *   field: "seq",
 *   resumeId: "orders-export",
 * });
 * assert.equal(source.kind, "source");
 * assert.throws(
 *   () => mongoSource({ url: "mongodb://127.0.0.1", db: "shop", collection: "orders" }),
 *   /config\.field/,
 * );
 * ```
 */
export function mongoSource<T = MongoDocument>(
  options: MongoSourceOptions & { changeStream: true },
  stageOptions?: StageOptions,
): StageRef<never, T | null>;
/** {@linkcode mongoSource} reading by `field`: documents are never `null`. */
export function mongoSource<T = MongoDocument>(
  options: MongoSourceOptions,
  stageOptions?: StageOptions,
): StageRef<never, T>;
export function mongoSource(
  options: MongoSourceOptions,
  stageOptions: StageOptions = {},
): StageRef<never, unknown> {
  parseConfig(mongoSourceStage, stageOptions.name ?? mongoSourceStage.name, options);
  return {
    kind: "source",
    module: import.meta.url,
    export: "mongoSourceStage",
    config: options,
    options: { permissions: mongoPermissions(options.url), ...stageOptions },
  };
}
