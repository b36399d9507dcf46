/**
 * The MongoDB connector: `mongoSink` (one acknowledged bulk write per batch, idempotent upserts,
 * refused documents dead-lettered) and `mongoSource` (incremental reads by a growing field, or a
 * change stream, resumable from a saved position), on the official driver.
 *
 * @module
 */
export {
  mongoSink,
  type MongoSinkConfig,
  type MongoSinkOptions,
  mongoSinkStage,
  type MongoWriteConcern,
} from "./mongo_sink.ts";
export {
  type MongoDocument,
  mongoSource,
  type MongoSourceConfig,
  type MongoSourceOptions,
  mongoSourceStage,
} from "./mongo_source.ts";
export { type MongoConnectionOptions, MONGODB_ENV, mongoPermissions } from "./mongo_connection.ts";
