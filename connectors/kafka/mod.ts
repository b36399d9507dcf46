/**
 * The Kafka connector: `kafkaSource` (a consumer group, offsets committed after the pipeline
 * acked) and `kafkaSink` (acknowledged produce requests, transient faults retried), with TLS and
 * SASL passed through to kafkajs.
 *
 * @module
 */
export {
  type KafkaDecoder,
  kafkaSource,
  type KafkaSourceConfig,
  type KafkaSourceOptions,
  kafkaSourceStage,
  type KafkaSourceStats,
} from "./kafka_source.ts";
export {
  type KafkaEncoder,
  kafkaSink,
  type KafkaSinkConfig,
  type KafkaSinkOptions,
  kafkaSinkStage,
} from "./kafka_sink.ts";
export {
  type KafkaConnectionOptions,
  KAFKAJS_ENV,
  kafkaPermissions,
  type KafkaSaslOptions,
  type KafkaTlsOptions,
} from "./kafka_connection.ts";
