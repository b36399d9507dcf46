// W3 plumbing against the real broker: the events and their transform, the broker check, topics
// (output topics stamp LogAppendTime, so the broker's own clock times every side alike), loading
// the input, waiting for output, and reading an output topic back into a digest that two sides'
// outputs can be compared by.
import { Buffer } from "node:buffer";
import { type kafkajs, loadKafkajs } from "../connectors/kafka/_deps.ts";

const kafkajsModule = await loadKafkajs();

/** One input event (~100 bytes of JSON). */
export interface BenchEvent {
  id: number;
  user: string;
  sku: string;
  type: string;
  price: number;
  qty: number;
  ts: number;
}

/** The transform both sides apply: upper-case `type`, add `total`. Closes over nothing. */
export function transformEvent(e: BenchEvent): BenchEvent & { total: number } {
  return { ...e, type: e.type.toUpperCase(), total: Math.round(e.price * e.qty * 100) / 100 };
}

const TYPES = ["view", "cart", "purchase", "refund"];

/** Event `i` of the input, deterministic. */
export function event(i: number): BenchEvent {
  const h = Math.imul(i ^ 0x9e3779b9, 0x85ebca6b) >>> 0;
  return {
    id: i,
    user: `u-${h % 10_000}`,
    sku: `sku-${(h >>> 8) % 1000}`,
    type: TYPES[(h >>> 4) % 4]!,
    price: ((h >>> 12) % 100_000) / 100,
    qty: 1 + (h % 5),
    ts: 1_700_000_000_000 + i,
  };
}

/** A kafkajs client with logging off. */
export function benchKafka(brokers: string[], clientId: string): kafkajs.Kafka {
  return new kafkajsModule.Kafka({
    clientId,
    brokers,
    logLevel: kafkajsModule.logLevel.NOTHING,
    retry: { retries: 8, initialRetryTime: 100 },
  });
}

/** Throws a readable error when no broker answers on TCP. */
export async function checkBroker(brokers: string[]): Promise<void> {
  const [host, port] = brokers[0]!.split(":");
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error("timed out after 2 s")), 2000);
  });
  try {
    const conn = await Promise.race([
      Deno.connect({ hostname: host!, port: Number(port) }),
      timeout,
    ]);
    conn.close();
  } catch (error) {
    throw new Error(
      `Cannot run W3: Kafka is not reachable at ${brokers.join(",")} ` +
        `(${(error as Error).message}); start it with \`bash scripts/services.sh up\``,
    );
  } finally {
    clearTimeout(timer);
  }
}

/** Creates topics; `appendTime` makes the broker stamp each message with its append time. */
export async function createTopics(
  admin: kafkajs.Admin,
  names: string[],
  partitions: number,
  appendTime: boolean,
): Promise<void> {
  const configEntries = appendTime
    ? [{ name: "message.timestamp.type", value: "LogAppendTime" }]
    : [];
  await admin.createTopics({
    waitForLeaders: true,
    topics: names.map((topic) => ({
      topic,
      numPartitions: partitions,
      replicationFactor: 1,
      configEntries,
    })),
  });
}

/** The sum of a topic's end offsets. */
export async function endTotal(admin: kafkajs.Admin, topic: string): Promise<number> {
  return (await admin.fetchTopicOffsets(topic)).reduce((n, p) => n + Number(p.high), 0);
}

/** Polls the topic's end offsets every 25 ms until they reach `count`; rejects after `timeoutMs`. */
export async function waitForOutput(
  admin: kafkajs.Admin,
  topic: string,
  count: number,
  timeoutMs: number,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const n = await endTotal(admin, topic);
    if (n >= count) return;
    if (Date.now() > deadline) {
      throw new Error(`Timed out after ${timeoutMs} ms: ${n} of ${count} records in ${topic}`);
    }
    await new Promise((r) => setTimeout(r, 25));
  }
}

/** Produces events 0..count-1, spread evenly over the partitions, as fast as kafkajs can. */
export async function loadInput(
  kafka: kafkajs.Kafka,
  topic: string,
  count: number,
  partitions: number,
): Promise<number> {
  const producer = kafka.producer({ allowAutoTopicCreation: false });
  await producer.connect();
  let bytes = 0;
  try {
    const chunk = 8000;
    const inFlight = new Set<Promise<unknown>>();
    for (let from = 0; from < count; from += chunk) {
      const messages: kafkajs.Message[] = [];
      for (let i = from; i < Math.min(count, from + chunk); i++) {
        const e = event(i);
        const value = JSON.stringify(e);
        bytes += value.length;
        messages.push({ key: e.user, value, partition: i % partitions });
      }
      const sent = producer.send({ topic, messages, acks: 1 });
      inFlight.add(sent);
      void sent.finally(() => inFlight.delete(sent)).catch(() => {});
      if (inFlight.size >= 4) await Promise.race(inFlight);
    }
    await Promise.all(inFlight);
  } finally {
    await producer.disconnect();
  }
  return bytes;
}

/** What an output topic holds, in a form two sides can be compared by. */
export interface OutputDigest {
  /** Messages read. */
  count: number;
  /** Input ids seen exactly once. */
  idsOnce: number;
  /** Order-independent checksum over every key and value (sum of FNV-1a mod 2^32). */
  checksum: number;
  /** Values (as text) of every input id divisible by `sampleEvery`. */
  sample: Map<number, string>;
  /** Broker append time of the first and last message written, ms. */
  firstAppend: number;
  lastAppend: number;
}

/** FNV-1a 32 of bytes. */
function fnv(bytes: Uint8Array, h = 0x811c9dc5): number {
  for (let i = 0; i < bytes.length; i++) h = Math.imul(h ^ bytes[i]!, 0x01000193);
  return h >>> 0;
}

/** Reads an output topic from the beginning until `count` messages (or 60 s) into a digest. */
export async function digestOutput(
  kafka: kafkajs.Kafka,
  topic: string,
  count: number,
  sampleEvery: number,
): Promise<OutputDigest> {
  const seen = new Uint8Array(count);
  const d: OutputDigest = {
    count: 0,
    idsOnce: 0,
    checksum: 0,
    sample: new Map(),
    firstAppend: Infinity,
    lastAppend: -Infinity,
  };
  const consumer = kafka.consumer({
    groupId: `w3-reader-${crypto.randomUUID()}`,
    maxWaitTimeInMs: 100,
    maxBytesPerPartition: 4 << 20,
  });
  let done!: () => void;
  const finished = new Promise<void>((r) => (done = r));
  await consumer.connect();
  try {
    await consumer.subscribe({ topics: [topic], fromBeginning: true });
    await consumer.run({
      autoCommit: false,
      eachBatch: ({ batch }) => {
        for (const m of batch.messages) {
          const value = m.value ?? Buffer.alloc(0);
          d.count++;
          d.checksum = (d.checksum + fnv(value, fnv(m.key ?? Buffer.alloc(0)))) >>> 0;
          const t = Number(m.timestamp);
          if (t < d.firstAppend) d.firstAppend = t;
          if (t > d.lastAppend) d.lastAppend = t;
          const text = value.toString();
          const id = Number(text.slice(6, text.indexOf(",")));
          if (Number.isInteger(id) && id >= 0 && id < count && seen[id]! < 255) seen[id]!++;
          if (id % sampleEvery === 0) d.sample.set(id, text);
        }
        if (d.count >= count) done();
        return Promise.resolve();
      },
    });
    let timer: ReturnType<typeof setTimeout> | undefined;
    await Promise.race([finished, new Promise((r) => (timer = setTimeout(r, 60_000)))]);
    clearTimeout(timer);
  } finally {
    await consumer.disconnect();
  }
  for (let i = 0; i < count; i++) if (seen[i] === 1) d.idsOnce++;
  return d;
}
