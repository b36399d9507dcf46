/**
 * Kafka → upper-case → Kafka: reads text values from one topic and writes them upper-cased, with
 * the same key, to another, until SIGINT or SIGTERM; then it drains what is in flight, commits
 * the consumer group's offsets and prints a one-line summary.
 *
 * ```sh
 * deno run -A examples/kafka_uppercase.ts --brokers 127.0.0.1:9092 \
 *   --input input_topic --output output_topic --group uppercase
 * ```
 *
 * @module
 */
import { parseArgs } from "node:util";
import { map, pipeline } from "../mod.ts";
import { kafkaSink, kafkaSource } from "../connectors/kafka/mod.ts";

const usage = "usage: deno run -A examples/kafka_uppercase.ts --brokers host:port[,host:port] " +
  "--input <topic> --output <topic> --group <consumer group> [--mode workers|inline]";

const { values: args } = parseArgs({
  args: Deno.args,
  options: {
    brokers: { type: "string", default: "127.0.0.1:9092" },
    input: { type: "string" },
    output: { type: "string" },
    group: { type: "string" },
    mode: { type: "string", default: "workers" },
    help: { type: "boolean", short: "h" },
  },
});
if (args.help || !args.input || !args.output || !args.group) {
  console.error(usage);
  Deno.exit(args.help ? 0 : 2);
}
if (args.mode !== "workers" && args.mode !== "inline") {
  console.error(`Cannot run: --mode is "${args.mode}", expected workers or inline\n${usage}`);
  Deno.exit(2);
}

const started = performance.now();
// `signals` (on by default) turns SIGINT/SIGTERM into a graceful stop: the source stops
// pulling, in-flight records are written and acked, offsets are committed, clients disconnect.
const summary = await pipeline({ name: "kafka-uppercase", mode: args.mode })
  .from(kafkaSource({
    brokers: args.brokers,
    topics: args.input,
    groupId: args.group,
    fromBeginning: true,
    decoder: "text",
  }))
  .via(map((value: string | null) => value === null ? null : value.toUpperCase()), {
    name: "upper",
  })
  .to(kafkaSink({ brokers: args.brokers, topic: args.output, encoder: "text" }))
  .run();

const read = summary.stages["kafka-source"]?.out ?? 0;
const written = summary.stages["kafka-sink"]?.out ?? 0;
const dead = Object.values(summary.stages).reduce((n, s) => n + s.deadLettered, 0);
const seconds = ((performance.now() - started) / 1000).toFixed(1);
console.log(
  `kafka_uppercase: ${read} records read from ${args.input}, ${written} written to ` +
    `${args.output}, ${dead} dead-lettered, in ${seconds} s`,
);
