// kafkaSink() against the real broker: message fields, encoders, keyFrom and partition header,
// record-level failures dead-lettered alone, transient failures as RetriableError, no secrets.
import assert from "node:assert/strict";
import {
  ConfigError,
  fromArray,
  memoryDeadLetters,
  pipeline,
  type StageContext,
  type StreamRecord,
} from "../../mod.ts";
import { kafkaSink, type KafkaSinkOptions, kafkaSinkStage } from "../../connectors/kafka/mod.ts";
import {
  brokers,
  createTopics,
  handContext,
  readTopic,
  testKafka,
} from "./fixtures/kafka_helpers.ts";

const text = new TextDecoder();

/** Opens a sink instance by hand, as a worker would. */
async function openSink(options: Omit<KafkaSinkOptions, "keyFrom">) {
  const parsed = kafkaSinkStage.config.safeParse(options);
  if (!parsed.success) throw new Error(parsed.error.issues[0]?.message);
  const { ctx } = handContext();
  const sink = await kafkaSinkStage.open(parsed.data, ctx as StageContext<never>);
  return { sink, ctx: ctx as StageContext<never> };
}

Deno.test("kafkaSink() writes key, value, event time and headers, and routes by the partition header", async () => {
  const kafka = testKafka();
  const [topic] = await createTopics(kafka, ["sink-fields"], 3);
  const records: StreamRecord<unknown>[] = [
    { key: "a", value: { n: 1 }, ts: 1700000000123, headers: { trace: "t1", "kafka.offset": "9" } },
    { key: "b", value: "plain", ts: 1700000000124, headers: { "kafka.sink.partition": "2" } },
    {
      value: new Uint8Array([1, 2, 3]),
      ts: 1700000000125,
      headers: { "kafka.sink.partition": "1" },
    },
    { key: "t", value: null, ts: 1700000000126 },
  ];
  await pipeline({ mode: "inline", signals: false })
    .from(fromArray(records))
    .to(kafkaSink({ brokers: brokers(), topic: topic! }))
    .run();
  const got = await readTopic(kafka, topic!, 4);
  const byTs = new Map(got.map((m) => [m.timestamp, m]));
  const a = byTs.get("1700000000123")!;
  assert.equal(text.decode(a.key!), "a");
  assert.equal(text.decode(a.value!), '{"n":1}');
  assert.deepEqual(Object.keys(a.headers!), ["trace"], "source coordinates are not copied");
  assert.equal(text.decode(a.headers!.trace as Uint8Array), "t1");
  const b = byTs.get("1700000000124")!;
  assert.equal(text.decode(b.value!), "plain");
  assert.equal(b.headers?.["kafka.sink.partition"], undefined);
  assert.deepEqual([...byTs.get("1700000000125")!.value!], [1, 2, 3]);
  assert.equal(byTs.get("1700000000125")!.key, null);
  assert.equal(byTs.get("1700000000126")!.value, null, "null is a tombstone");
  // The partition header picked the partitions.
  const reader = kafka.admin();
  await reader.connect();
  try {
    const ends = await reader.fetchTopicOffsets(topic!);
    assert.ok(ends.find((p) => p.partition === 2)!.high !== "0");
    assert.ok(ends.find((p) => p.partition === 1)!.high !== "0");
  } finally {
    await reader.disconnect();
  }
});

Deno.test("kafkaSink() in a worker keys messages with keyFrom, encodes JSON and compresses with gzip", async () => {
  const kafka = testKafka();
  const [topic] = await createTopics(kafka, ["sink-keyfrom"]);
  await pipeline({ mode: "workers", signals: false })
    .from(
      fromArray([{ value: { user: "u1", n: 1 }, ts: 0 }, { value: { user: "u2", n: 2 }, ts: 0 }]),
    )
    .to(kafkaSink<{ user: string }>({
      brokers: brokers(),
      topic: topic!,
      encoder: "json",
      compression: "gzip",
      keyFrom: (v) => `user:${v.user}`,
    }))
    .run();
  const got = await readTopic(kafka, topic!, 2);
  assert.deepEqual(
    got.map((m) => [text.decode(m.key!), JSON.parse(text.decode(m.value!))]),
    [["user:u1", { user: "u1", n: 1 }], ["user:u2", { user: "u2", n: 2 }]],
  );
});

Deno.test("kafkaSink() dead-letters an oversized record and a value its encoder rejects, and writes the rest", async () => {
  const kafka = testKafka();
  const [topic] = await createTopics(kafka, ["sink-poison"]);
  const dead = memoryDeadLetters();
  await pipeline({ mode: "inline", signals: false, deadLetter: dead })
    .from(fromArray<unknown>([
      { key: "ok1", value: "small", ts: 0 },
      { key: "big", value: "x".repeat(1_200_000), ts: 0 },
      { key: "obj", value: { not: "text" }, ts: 0 },
      { key: "ok2", value: "small too", ts: 0 },
    ]))
    .to(kafkaSink({ brokers: brokers(), topic: topic!, encoder: "text" }), { maxRetries: 0 })
    .run();
  const got = await readTopic(kafka, topic!, 2);
  assert.deepEqual(got.map((m) => text.decode(m.key!)).sort(), ["ok1", "ok2"]);
  assert.deepEqual(dead.entries.map((d) => d.record.key).sort(), ["big", "obj"]);
  assert.match(
    dead.entries.find((d) => d.record.key === "big")!.error.message,
    /over maxMessageBytes/,
  );
});

Deno.test("kafkaSink() dead-letters a record the broker rejects as too large", async () => {
  const kafka = testKafka();
  const [topic] = await createTopics(kafka, ["sink-too-large"]);
  const dead = memoryDeadLetters();
  await pipeline({ mode: "inline", signals: false, deadLetter: dead })
    .from(fromArray([
      { key: "ok", value: "small", ts: 0 },
      { key: "huge", value: "y".repeat(1_500_000), ts: 0 },
    ]))
    .to(
      kafkaSink({
        brokers: brokers(),
        topic: topic!,
        maxMessageBytes: 4_000_000, // let it reach the broker (message.max.bytes ~1 MiB)
        maxRequestBytes: 4_000_000,
      }),
      { maxRetries: 0 },
    )
    .run();
  assert.deepEqual(dead.entries.map((d) => d.record.key), ["huge"]);
  assert.match(dead.entries[0]!.error.message, /^Cannot write to Kafka topic ".+": .*larger/);
  const got = await readTopic(kafka, topic!, 1);
  assert.deepEqual(got.map((m) => text.decode(m.key!)), ["ok"]);
});

Deno.test("kafkaSink() throws RetriableError when no broker answers, and never shows the password", async () => {
  const password = "s3cr3t-never-shown";
  const { sink, ctx } = await openSink({
    brokers: "127.0.0.1:1",
    topic: "nowhere",
    sasl: { mechanism: "scram-sha-512", username: "app", password },
    connectionTimeoutMs: 200,
    retries: 1,
  });
  try {
    const error = await Promise.resolve(sink.write([{ value: "x", ts: 0 }], ctx)).then(
      () => undefined,
      (e: unknown) => e,
    );
    assert.ok(error instanceof Error);
    assert.equal((error as { code?: string }).code, "E_RETRIABLE");
    assert.match(error.message, /^Cannot write to Kafka topic "nowhere": /);
    assert.ok(!JSON.stringify({ m: error.message, s: error.stack }).includes(password));
  } finally {
    await sink.close?.(ctx);
  }
});

Deno.test("kafkaSink() authenticating with SASL against a broker without it fails without the password", async () => {
  const password = "s3cr3t-never-shown-2";
  const { sink, ctx } = await openSink({
    brokers: brokers(),
    topic: "sasl-nowhere",
    sasl: { mechanism: "plain", username: "app", password },
    retries: 1,
  });
  try {
    const error = await Promise.resolve(sink.write([{ value: "x", ts: 0 }], ctx)).then(
      () => undefined,
      (e: unknown) => e,
    );
    assert.ok(error instanceof Error, "the broker has no SASL listener");
    assert.match(error.message, /SASL/);
    assert.equal(
      (error as { code?: string }).code,
      "E_RETRIABLE",
      "auth failures hold the pipeline",
    );
    assert.ok(!`${error.message}\n${error.stack}`.includes(password));
  } finally {
    await sink.close?.(ctx);
  }
});

Deno.test("kafkaSink() passes TLS options to kafkajs: a TLS handshake with a plaintext listener fails as RetriableError", async () => {
  const { sink, ctx } = await openSink({
    brokers: brokers(),
    topic: "tls-nowhere",
    ssl: { rejectUnauthorized: true, servername: "kafka.test" },
    connectionTimeoutMs: 1000,
    retries: 1,
  });
  try {
    const error = await Promise.resolve(sink.write([{ value: "x", ts: 0 }], ctx)).then(
      () => undefined,
      (e: unknown) => e,
    );
    assert.ok(error instanceof Error);
    assert.equal((error as { code?: string }).code, "E_RETRIABLE");
    assert.match(error.message, /TLS/);
  } finally {
    await sink.close?.(ctx);
  }
});

Deno.test("kafkaSink() rejects a bad config at build time, naming the path", () => {
  const base = { brokers: "127.0.0.1:9092", topic: "t" };
  assert.throws(
    () => kafkaSink({ ...base, acks: 1 }),
    (e) => e instanceof ConfigError && /config\.acks: must be -1 when idempotent/.test(e.message),
  );
  assert.equal(kafkaSink({ ...base, acks: 1, idempotent: false }).kind, "sink");
  assert.throws(() => kafkaSink({ ...base, topic: "" }), /config\.topic/);
  assert.throws(() => kafkaSink({ ...base, retries: 0 }), /config\.retries: must be at least 1/);
  const outer = "k";
  assert.throws(() => kafkaSink({ ...base, keyFrom: () => outer }), /outer variable outer/);
});
