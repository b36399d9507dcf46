// Smoke test: kafkajs against the Kafka broker that `bash scripts/services.sh up` started.
import assert from "node:assert/strict";
import { type kafkajs as Kafkajs, loadKafkajs } from "../../connectors/kafka/_deps.ts";
import { services, uniqueName } from "./_services.ts";

const kafkajs = await loadKafkajs();

const { Kafka, logLevel, Partitioners } = kafkajs;
type Consumer = Kafkajs.Consumer;
type KafkaMessage = Kafkajs.KafkaMessage;

function client(id: string): Kafkajs.Kafka {
  return new Kafka({
    clientId: id,
    brokers: services().kafkaBrokers,
    // kafkajs logs retriable errors (e.g. "coordinator is loading" on a fresh broker) at ERROR;
    // real failures still reject the calls below.
    logLevel: logLevel.NOTHING,
    retry: { retries: 8, initialRetryTime: 200 },
  });
}

async function createTopic(kafka: Kafkajs.Kafka, topic: string, partitions = 1): Promise<void> {
  const admin = kafka.admin();
  await admin.connect();
  try {
    assert.equal(
      await admin.createTopics({
        waitForLeaders: true,
        topics: [{ topic, numPartitions: partitions, replicationFactor: 1 }],
      }),
      true,
    );
  } finally {
    await admin.disconnect();
  }
}

/** Runs `consumer` on `topic` from the beginning until `count` messages arrived. */
async function consume(
  consumer: Consumer,
  topic: string,
  count: number,
  timeoutMs = 30_000,
): Promise<KafkaMessage[]> {
  const got: KafkaMessage[] = [];
  let done!: () => void;
  const enough = new Promise<void>((resolve) => (done = resolve));
  await consumer.subscribe({ topic, fromBeginning: true });
  await consumer.run({
    eachMessage: ({ message }) => {
      got.push(message);
      if (got.length >= count) done();
      return Promise.resolve();
    },
  });
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new Error(`got ${got.length} of ${count} messages from ${topic} in time`)),
      timeoutMs,
    );
  });
  try {
    await Promise.race([enough, timeout]);
  } finally {
    clearTimeout(timer);
  }
  return got;
}

const text = (b: Uint8Array | Buffer | null | undefined) =>
  b == null ? null : new TextDecoder().decode(b);

Deno.test({
  name: "Kafka smoke: produce and consume a message on a fresh topic",
  fn: async () => {
    const kafka = client("sluice-smoke");
    const topic = uniqueName("sluice-smoke");
    await createTopic(kafka, topic);
    const producer = kafka.producer({ createPartitioner: Partitioners.DefaultPartitioner });
    const consumer = kafka.consumer({ groupId: uniqueName("sluice-smoke-group") });
    try {
      await producer.connect();
      const sent = await producer.send({
        topic,
        messages: [{ key: "k1", value: "hello sluice", headers: { source: "smoke" } }],
      });
      assert.equal(sent.length, 1);
      assert.equal(sent[0]!.errorCode, 0);

      await consumer.connect();
      const [msg] = await consume(consumer, topic, 1);
      assert.ok(msg);
      assert.equal(text(msg.key), "k1");
      assert.equal(text(msg.value), "hello sluice");
      assert.equal(text(msg.headers?.source as Buffer), "smoke");
      assert.equal(msg.offset, "0");
    } finally {
      await consumer.disconnect();
      await producer.disconnect();
    }
  },
});

Deno.test({
  name: "Kafka smoke: a read_committed consumer sees committed transactions, not aborted ones",
  fn: async () => {
    const kafka = client("sluice-smoke-tx");
    const topic = uniqueName("sluice-smoke-tx");
    await createTopic(kafka, topic);
    const producer = kafka.producer({
      transactionalId: uniqueName("sluice-smoke-txid"),
      idempotent: true,
      maxInFlightRequests: 1,
      createPartitioner: Partitioners.DefaultPartitioner,
    });
    const consumer = kafka.consumer({
      groupId: uniqueName("sluice-smoke-tx-group"),
      readUncommitted: false, // isolation.level=read_committed
    });
    try {
      await producer.connect();

      const aborted = await producer.transaction();
      await aborted.send({ topic, messages: [{ key: "a", value: "aborted-1" }] });
      await aborted.abort();

      const committed = await producer.transaction();
      await committed.send({
        topic,
        messages: [{ key: "c", value: "committed-1" }, { key: "c", value: "committed-2" }],
      });
      await committed.commit();

      await consumer.connect();
      // The aborted record sits before the committed ones in the log, so once both committed
      // records arrived an aborted one would have been delivered already.
      const got = await consume(consumer, topic, 2);
      assert.deepEqual(got.map((m) => text(m.value)), ["committed-1", "committed-2"]);
    } finally {
      await consumer.disconnect();
      await producer.disconnect();
    }
  },
});
