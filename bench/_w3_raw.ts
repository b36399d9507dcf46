// The W3 baseline: the plain kafkajs loop a Node developer writes. One consumer in its own group,
// `eachBatch` → `JSON.parse` → transformEvent → `JSON.stringify` → one `producer.send` of the whole
// fetched batch (acks -1, kafkajs's default producer) → `resolveOffset` + `heartbeat`; kafkajs
// auto-commits the resolved offsets after each batch.
import type { kafkajs } from "../connectors/kafka/_deps.ts";
import { type BenchEvent, transformEvent } from "./_w3_kafka.ts";

/** Settings of the raw loop. */
export interface RawOptions {
  input: string;
  output: string;
  groupId: string;
  count: number;
  /** kafkajs `maxBytesPerPartition`; default kafkajs's 1 MiB. */
  maxBytesPerPartition?: number;
  /** kafkajs `partitionsConsumedConcurrently`; default 1. */
  concurrency?: number;
  /** Give up after this long, ms. */
  timeoutMs: number;
}

/** What the raw loop measured in-process. */
export interface RawResult {
  /** `performance.now()` when the first fetched batch arrived. */
  firstMessageAt: number;
  /** `performance.now()` when the send holding the N-th record resolved. */
  doneAt: number;
  /** Records produced (≥ count: the last batch may go past it only if the topic had more). */
  produced: number;
  /** `producer.send` calls and their total time, ms. */
  sends: number;
  sendMs: number;
  /** Time spent parsing, transforming and serialising, ms. */
  transformMs: number;
}

/** Runs the loop until `count` records were produced, then disconnects both clients. */
export async function rawLoop(kafka: kafkajs.Kafka, o: RawOptions): Promise<RawResult> {
  const consumer = kafka.consumer({
    groupId: o.groupId,
    maxBytesPerPartition: o.maxBytesPerPartition ?? 1_048_576,
  });
  const producer = kafka.producer({ allowAutoTopicCreation: false });
  const r: RawResult = {
    firstMessageAt: 0,
    doneAt: 0,
    produced: 0,
    sends: 0,
    sendMs: 0,
    transformMs: 0,
  };
  let done!: () => void;
  const finished = new Promise<void>((resolve) => (done = resolve));
  await Promise.all([producer.connect(), consumer.connect()]);
  try {
    await consumer.subscribe({ topics: [o.input], fromBeginning: true });
    await consumer.run({
      partitionsConsumedConcurrently: o.concurrency ?? 1,
      eachBatch: async ({ batch, resolveOffset, heartbeat, isRunning, isStale }) => {
        if (r.firstMessageAt === 0) r.firstMessageAt = performance.now();
        if (!isRunning() || isStale() || batch.messages.length === 0) return;
        const t0 = performance.now();
        const messages: kafkajs.Message[] = new Array(batch.messages.length);
        for (let i = 0; i < batch.messages.length; i++) {
          const m = batch.messages[i]!;
          const value = transformEvent(JSON.parse(m.value!.toString()) as BenchEvent);
          messages[i] = { key: m.key, value: JSON.stringify(value), timestamp: m.timestamp };
        }
        const t1 = performance.now();
        await producer.send({ topic: o.output, messages, acks: -1 });
        const t2 = performance.now();
        r.transformMs += t1 - t0;
        r.sendMs += t2 - t1;
        r.sends++;
        resolveOffset(batch.messages[batch.messages.length - 1]!.offset);
        await heartbeat();
        r.produced += messages.length;
        if (r.produced >= o.count && r.doneAt === 0) {
          r.doneAt = performance.now();
          done();
        }
      },
    });
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(new Error(`Cannot finish raw loop: ${r.produced} of ${o.count} produced`)),
        o.timeoutMs,
      );
    });
    await Promise.race([finished, timeout]).finally(() => clearTimeout(timer));
  } finally {
    await consumer.disconnect();
    await producer.disconnect();
  }
  return r;
}
