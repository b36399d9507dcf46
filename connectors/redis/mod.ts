/**
 * The Redis Streams connector: `redisStreamSource` (a consumer group, entries acknowledged only
 * after the pipeline finished them, stale entries of dead consumers claimed) and
 * `redisStreamSink` (pipelined XADD per batch, optional MAXLEN trimming), on ioredis.
 *
 * @module
 */
export {
  redisStreamSource,
  type RedisStreamSourceConfig,
  type RedisStreamSourceOptions,
  redisStreamSourceStage,
} from "./redis_stream_source.ts";
export {
  redisStreamSink,
  type RedisStreamSinkConfig,
  type RedisStreamSinkOptions,
  redisStreamSinkStage,
} from "./redis_stream_sink.ts";
export { type RedisConnectionOptions, redisPermissions } from "./redis_connection.ts";
