// The connector conformance suite (tests/_connector_conformance.ts) against the real servers:
// Kafka, Redis Streams and MongoDB sources and sinks. Sources show their read position on the
// server while held (nothing committed / acknowledged / saved); Redis and MongoDB sinks write
// through a proxy that can hold their requests back from the server; Kafka's is checked against
// a consumer that tails the topic (Kafka hands out broker addresses, so no proxy fits).
import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import {
  type GateLine,
  type HeldView,
  HoldingProxy,
  sinkConformance,
  sourceConformance,
  waitFor,
} from "../_connector_conformance.ts";
import { kafkaSink, kafkaSource } from "../../connectors/kafka/mod.ts";
import { redisStreamSink, redisStreamSource } from "../../connectors/redis/mod.ts";
import { mongoSink, mongoSource } from "../../connectors/mongo/mod.ts";
import { loadIoredis, type Redis } from "../../stores/redis/_deps.ts";
import { type Document, loadMongodb } from "../../stores/mongo/_deps.ts";
import {
  brokers,
  committedTotal,
  createTopics,
  endTotal,
  produce,
  testKafka,
} from "./fixtures/kafka_helpers.ts";
import { services, uniqueName } from "./_services.ts";

const portOf = (address: string) => Number(/:(\d+)(?:[/?]|$)/.exec(address)?.[1]);
const kafkaPort = portOf(brokers()[0]!);
const redisPort = portOf(services().redisUrl);
const mongoPort = portOf(services().mongoUrl);
const idOfValue = (l: GateLine) => (l.v as { i: number }).i;

async function deleteTopics(kafka: ReturnType<typeof testKafka>, topics: string[]) {
  const admin = kafka.admin();
  await admin.connect();
  try {
    await admin.deleteTopics({ topics });
  } catch {
    /* best effort */
  } finally {
    await admin.disconnect();
  }
}

/** Members of a consumer group, as the broker sees them. */
async function members(kafka: ReturnType<typeof testKafka>, groupId: string): Promise<number> {
  const admin = kafka.admin();
  await admin.connect();
  try {
    const { groups } = await admin.describeGroups([groupId]);
    return groups[0]?.members.length ?? 0;
  } finally {
    await admin.disconnect();
  }
}

sourceConformance("kafkaSource", {
  records: 2000,
  serverPort: kafkaPort,
  async setup() {
    const kafka = testKafka();
    const [topic] = await createTopics(kafka, ["conf-src"], 2);
    const groupId = uniqueName("conf-src-g");
    return {
      source: kafkaSource({
        brokers: brokers(),
        topics: topic!,
        groupId,
        fromBeginning: true,
        decoder: "json",
        maxWaitTimeMs: 50,
        maxBytesPerPartition: 16_384,
        maxBufferedBatches: 2,
      }),
      prepare: (n) =>
        produce(
          kafka,
          topic!,
          Array.from({ length: n }, (_, i) => ({ key: `k${i}`, value: JSON.stringify({ i }) })),
          200,
        ),
      idOf: idOfValue,
      async held() {
        // Nothing was taken by the sink: nothing may be committed, the whole topic is lag.
        assert.equal(await committedTotal(kafka, groupId, topic!), 0, "committed while held");
      },
      async drained(n) {
        assert.equal(await committedTotal(kafka, groupId, topic!), n, "committed after the run");
        assert.equal(await members(kafka, groupId), 0, "the consumer left the group at the end");
      },
      async killed() {
        await waitFor(
          async () => (await members(kafka, groupId)) === 0,
          5_000,
          () => "the killed consumer to leave the group",
        );
      },
      cleanup: () => deleteTopics(kafka, [topic!]),
    };
  },
});

sinkConformance("kafkaSink", {
  serverPort: kafkaPort,
  async setup() {
    const kafka = testKafka();
    const [topic] = await createTopics(kafka, ["conf-sink"]);
    // A consumer tails the topic; a read waits until it caught up with the high-water mark.
    const ids: number[] = [];
    const tail = kafka.consumer({ groupId: uniqueName("conf-sink-tail"), maxWaitTimeInMs: 50 });
    await tail.connect();
    await tail.subscribe({ topic: topic!, fromBeginning: true });
    await tail.run({
      eachMessage: ({ message }) => {
        ids.push((JSON.parse(Buffer.from(message.value!).toString()) as { i: number }).i);
        return Promise.resolve();
      },
    });
    return {
      sink: kafkaSink({ brokers: brokers(), topic: topic! }),
      async readIds() {
        const high = await endTotal(kafka, topic!);
        await waitFor(() => ids.length >= high, 15_000, () => `${high} messages tailed`);
        return [...ids];
      },
      async cleanup() {
        await tail.disconnect();
        await deleteTopics(kafka, [topic!]);
      },
    };
  },
  unreachable: (port) =>
    kafkaSink({
      brokers: [`127.0.0.1:${port}`],
      topic: "conformance-nowhere",
      retries: 1,
      connectionTimeoutMs: 300,
    }),
});

/** A Redis client for test plumbing, and `name()` for stream keys deleted at the end. */
async function redisClient() {
  const { Redis } = await loadIoredis();
  const redis: Redis = new Redis(services().redisUrl, { maxRetriesPerRequest: 2 });
  const keys: string[] = [];
  return {
    redis,
    name(prefix: string) {
      const key = uniqueName(prefix);
      keys.push(key);
      return key;
    },
    async close() {
      if (keys.length > 0) await redis.del(...keys);
      await redis.quit();
    },
  };
}

/** Clients the server has whose name starts with `prefix`. */
async function clientsNamed(redis: Redis, prefix: string): Promise<number> {
  const list = String(await redis.call("CLIENT", "LIST"));
  return list.split("\n").filter((l) => l.includes(` name=${prefix}`)).length;
}

sourceConformance("redisStreamSource", {
  records: 2000,
  serverPort: redisPort,
  async setup() {
    const r = await redisClient();
    const stream = r.name("conf-rs");
    const consumer = uniqueName("conf-c");
    const pending = async () => Number((await r.redis.xpending(stream, "g"))[0]);
    return {
      source: redisStreamSource({
        url: services().redisUrl,
        stream,
        group: "g",
        consumer,
        count: 50,
        blockMs: 100,
      }),
      async prepare(n) {
        const pipe = r.redis.pipeline();
        for (let i = 0; i < n; i++) pipe.xadd(stream, "*", "data", JSON.stringify({ i }));
        await pipe.exec();
      },
      idOf: idOfValue,
      async held(view: HeldView) {
        // What the source read is pending (delivered, not acknowledged): exactly what it pulled.
        assert.equal(await pending(), view.pulled, "entries pending while held");
        assert.ok(await clientsNamed(r.redis, `sluice:${consumer}`) >= 1, "the source's clients");
      },
      async drained() {
        assert.equal(await pending(), 0, "entries pending after the run");
        assert.equal(await clientsNamed(r.redis, `sluice:${consumer}`), 0, "clients left open");
      },
      async killed() {
        await waitFor(
          async () => (await clientsNamed(r.redis, `sluice:${consumer}`)) === 0,
          5_000,
          () => "the killed source's clients to go",
        );
      },
      cleanup: () => r.close(),
    };
  },
});

sinkConformance("redisStreamSink", {
  serverPort: redisPort,
  async setup() {
    const r = await redisClient();
    const stream = r.name("conf-rsink");
    const proxy = new HoldingProxy(redisPort);
    return {
      sink: redisStreamSink({ url: `redis://127.0.0.1:${proxy.port}`, stream }),
      async readIds() {
        const entries = await r.redis.xrange(stream, "-", "+");
        return entries.map(([, f]) => (JSON.parse(f[f.indexOf("data") + 1]!) as { i: number }).i);
      },
      hold: () => proxy.hold(),
      release: () => proxy.release(),
      connections: () => proxy.connections,
      async cleanup() {
        await proxy.close();
        await r.close();
      },
    };
  },
  unreachable: (port) =>
    redisStreamSink({
      url: `redis://127.0.0.1:${port}`,
      stream: "conformance-nowhere",
      connectTimeoutMs: 300,
    }),
  // ioredis' disconnect() destroys a socket that does not close within its disconnectTimeout (2 s).
  killSettleMs: 2_100,
});

/** A MongoDB client and a fresh database, dropped at the end. */
async function mongoClient() {
  const { MongoClient } = await loadMongodb();
  const client = new MongoClient(services().mongoUrl, { serverSelectionTimeoutMS: 5_000 });
  await client.connect();
  const db = uniqueName("sluice_conf").replaceAll("-", "_");
  return {
    db,
    collection: (name: string) => client.db(db).collection<Document>(name),
    async close() {
      await client.db(db).dropDatabase().catch(() => {});
      await client.close();
    },
  };
}

sourceConformance("mongoSource", {
  records: 2000,
  serverPort: mongoPort,
  async setup() {
    const m = await mongoClient();
    const saved = () => m.collection("sluice_positions").findOne({ _id: "conf" } as Document);
    return {
      source: mongoSource({
        url: services().mongoUrl,
        db: m.db,
        collection: "events",
        field: "seq",
        batchSize: 50,
        pollMs: 50,
        resumeId: "conf",
      }),
      async prepare(n) {
        const docs = Array.from({ length: n }, (_, i) => ({ _id: i, seq: i, i }));
        await m.collection("events").insertMany(docs as Document[]);
      },
      idOf: idOfValue,
      async held() {
        assert.equal(await saved(), null, "a position was saved although nothing was taken");
      },
      async drained(n) {
        assert.deepEqual((await saved())?.position, { v: n - 1, id: n - 1 });
      },
      cleanup: () => m.close(),
    };
  },
});

sinkConformance("mongoSink", {
  serverPort: mongoPort,
  async setup() {
    const m = await mongoClient();
    const proxy = new HoldingProxy(mongoPort);
    return {
      sink: mongoSink({
        url: `mongodb://127.0.0.1:${proxy.port}/?directConnection=true`,
        db: m.db,
        collection: "out",
      }),
      async readIds() {
        return (await m.collection("out").find().toArray()).map((d) => d.i as number);
      },
      hold: () => proxy.hold(),
      release: () => proxy.release(),
      connections: () => proxy.connections,
      async cleanup() {
        await proxy.close();
        await m.close();
      },
    };
  },
  unreachable: (port) =>
    mongoSink({
      url: `mongodb://127.0.0.1:${port}/?directConnection=true`,
      db: "conformance",
      collection: "nowhere",
      serverSelectionTimeoutMs: 300,
      connectTimeoutMs: 300,
    }),
});
