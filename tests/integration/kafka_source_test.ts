// kafkaSource() against the real broker: decoding, headers, backpressure (pause/resume with a
// bounded buffer), dead-lettering of undecodable values, start positions, rebalance hand-over.
import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import {
  collect,
  ConfigError,
  memoryDeadLetters,
  pipeline,
  type SourceInstance,
  type StreamRecord,
} from "../../mod.ts";
import { faultyKafkaSink } from "./fixtures/kafka_fault_sink.ts";
import {
  kafkaSource,
  type KafkaSourceOptions,
  kafkaSourceStage,
  type KafkaSourceStats,
} from "../../connectors/kafka/mod.ts";
import {
  brokers,
  committedTotal,
  createTopics,
  endTotal,
  handContext,
  produce,
  testKafka,
  uniqueName,
  waitFor,
} from "./fixtures/kafka_helpers.ts";

type Source = SourceInstance<unknown> & { stats(): KafkaSourceStats };

/** Opens a source instance by hand, as a worker would. */
async function openSource(options: Omit<KafkaSourceOptions, "brokers">) {
  const parsed = kafkaSourceStage.config.safeParse({ brokers: brokers(), ...options });
  if (!parsed.success) throw new Error(parsed.error.issues[0]?.message);
  const hand = handContext();
  const source = await kafkaSourceStage.open(parsed.data, hand.ctx) as Source;
  return { source, ...hand };
}

/** Pulls (and acks) until `count` records arrived or `timeoutMs` passed. */
async function drain(
  opened: Awaited<ReturnType<typeof openSource>>,
  count: number,
  { ack = true, timeoutMs = 20_000 } = {},
): Promise<StreamRecord<unknown>[]> {
  const got: StreamRecord<unknown>[] = [];
  await waitFor(
    async () => {
      const batch = await opened.source.pull({ max: 500, signal: opened.abort.signal }, opened.ctx);
      got.push(...batch?.records ?? []);
      if (ack && batch?.position !== undefined) {
        await opened.source.ack?.(batch.position, opened.ctx);
      }
      return got.length + opened.dead.length >= count;
    },
    timeoutMs,
    () => `${got.length} records`,
  );
  return got;
}

Deno.test("kafkaSource() reads keys, decoded values, timestamps and headers with the message coordinates", async () => {
  const kafka = testKafka();
  const [topic] = await createTopics(kafka, ["src-fields"]);
  const groupId = uniqueName("src-fields-g");
  await produce(kafka, topic!, [
    { key: "k1", value: "héllo", timestamp: "1700000000000", headers: { trace: "t-1" } },
    { key: null, value: "world", timestamp: "1700000000001" },
    { key: "k3", value: null, timestamp: "1700000000002" },
  ]);
  const out = collect<string | null>();
  const p = pipeline({ mode: "inline", signals: false })
    .from(
      kafkaSource({
        brokers: brokers(),
        topics: topic!,
        groupId,
        fromBeginning: true,
        decoder: "text",
      }),
    )
    .to(out.sink);
  const run = p.run();
  try {
    await waitFor(async () => (await out.records()).length >= 3, 20_000);
  } finally {
    await p.stop();
    await run;
  }
  const records = await out.records();
  await out.clear();
  assert.deepEqual(records.map((r) => [r.key, r.value, r.ts]), [
    ["k1", "héllo", 1700000000000],
    [undefined, "world", 1700000000001],
    ["k3", null, 1700000000002],
  ]);
  assert.deepEqual(records[0]!.headers, {
    trace: "t-1",
    "kafka.topic": topic,
    "kafka.partition": "0",
    "kafka.offset": "0",
  });
  assert.equal(records[2]!.headers?.["kafka.offset"], "2");
  assert.equal(await committedTotal(kafka, groupId, topic!), 3, "all three committed at stop");
});

Deno.test("kafkaSource() pauses partitions it is not pulled for, keeps its buffer bounded and resumes", async () => {
  const kafka = testKafka();
  const [topic] = await createTopics(kafka, ["src-pause"], 2);
  const count = 4000;
  await produce(
    kafka,
    topic!,
    Array.from({ length: count }, (_, i) => ({
      key: `k${i % 7}`,
      value: JSON.stringify({ i, pad: "x".repeat(80) }),
    })),
    50,
  );
  const opened = await openSource({
    topics: topic!,
    groupId: uniqueName("src-pause-g"),
    fromBeginning: true,
    decoder: "json",
    maxBufferedBatches: 2,
    maxBytesPerPartition: 4096,
    maxWaitTimeMs: 50,
  });
  try {
    const { source } = opened;
    // Not pulled: the buffer fills up to its bound, then the partitions get paused.
    await waitFor(() => source.stats().paused.length > 0, 10_000, () => "a paused partition");
    for (let i = 0; i < 10; i++) {
      const s = source.stats();
      assert.ok(s.bufferedBatches <= 2, `buffer holds ${s.bufferedBatches} batches`);
      assert.ok(s.bufferedMessages < 200, `buffer holds ${s.bufferedMessages} messages`);
      await new Promise((r) => setTimeout(r, 50));
    }
    // Pulled again: everything arrives, in order per partition, once each.
    const got = await drain(opened, count);
    assert.equal(got.length, count);
    assert.equal(new Set(got.map((r) => (r.value as { i: number }).i)).size, count);
    const last = new Map<string, number>();
    for (const r of got) {
      const p = r.headers!["kafka.partition"]!;
      const offset = Number(r.headers!["kafka.offset"]);
      assert.ok(offset > (last.get(p) ?? -1), `partition ${p} out of order at ${offset}`);
      last.set(p, offset);
    }
    assert.deepEqual(source.stats().paused, []);
    await waitFor(
      () => Object.values(source.stats().committed).reduce((a, b) => a + b, 0) === count,
      5000,
      () => JSON.stringify(source.stats().committed),
    );
  } finally {
    await opened.source.close?.(opened.ctx);
  }
});

Deno.test("kafkaSource() dead-letters a value that is not JSON with its topic, partition and offset, and goes on", async () => {
  const kafka = testKafka();
  const [topic] = await createTopics(kafka, ["src-badjson"]);
  const groupId = uniqueName("src-badjson-g");
  await produce(kafka, topic!, [
    { key: "a", value: '{"n":1}' },
    { key: "b", value: Buffer.from([0x7b, 0xff, 0x00, 0x22]) },
    { key: "c", value: "{not json" },
    { key: "d", value: '{"n":4}' },
  ]);
  const opened = await openSource({
    topics: topic!,
    groupId,
    fromBeginning: true,
    decoder: "json",
  });
  try {
    const got = await drain(opened, 4);
    assert.deepEqual(got.map((r) => r.value), [{ n: 1 }, { n: 4 }]);
    assert.deepEqual(opened.dead.map((d) => [d.record.key, d.record.headers?.["kafka.offset"]]), [
      ["b", "1"],
      ["c", "2"],
    ]);
    assert.equal(opened.dead[1]!.record.value, "{not json");
    assert.equal(opened.dead[1]!.record.headers?.["kafka.topic"], topic);
    assert.equal(opened.dead[1]!.record.headers?.["kafka.partition"], "0");
    assert.match(opened.dead[0]!.reason, /not valid UTF-8/);
    assert.match(opened.dead[1]!.reason, new RegExp(`${topic}/0@2: value is not JSON`));
  } finally {
    await opened.source.close?.(opened.ctx);
  }
  assert.equal(await committedTotal(kafka, groupId, topic!), 4, "dead letters are committed too");
});

Deno.test("Malformed bytes go to the pipeline's dead-letter sink with topic/partition/offset and the pipeline goes on", async () => {
  const kafka = testKafka();
  const [topic] = await createTopics(kafka, ["src-dlq"]);
  const groupId = uniqueName("src-dlq-g");
  await produce(kafka, topic!, [
    { key: "a", value: '{"n":1}' },
    { key: "b", value: Buffer.from([0xde, 0xad, 0xbe, 0xef]) },
    { key: "c", value: '{"n":3}' },
  ]);
  const dead = memoryDeadLetters();
  const out = collect<{ n: number }>();
  const p = pipeline({ mode: "inline", signals: false, deadLetter: dead })
    .from(kafkaSource<{ n: number }>({
      brokers: brokers(),
      topics: topic!,
      groupId,
      fromBeginning: true,
      decoder: "json",
    }))
    .to(out.sink);
  const run = p.run();
  try {
    await waitFor(
      async () => (await out.records()).length >= 2 && dead.entries.length >= 1,
      20_000,
    );
  } finally {
    await p.stop();
    await run;
  }
  assert.deepEqual(await out.values(), [{ n: 1 }, { n: 3 }]);
  await out.clear();
  assert.equal(dead.entries.length, 1);
  const entry = dead.entries[0]!;
  assert.equal(entry.stage, "kafka-source");
  assert.equal(entry.record.key, "b");
  assert.deepEqual(
    [entry.record.headers?.["kafka.topic"], entry.record.headers?.["kafka.partition"]],
    [topic, "0"],
  );
  assert.equal(entry.record.headers?.["kafka.offset"], "1");
  assert.match(entry.error.message, /not valid UTF-8/);
  assert.equal(await committedTotal(kafka, groupId, topic!), 3);
});

Deno.test("kafkaSource() stops pulling without credit: a slow sink holds it back, lag grows, then all arrives", async () => {
  const kafka = testKafka();
  const [input, output] = await createTopics(kafka, ["src-slow-in", "src-slow-out"], 2);
  const groupId = uniqueName("src-slow-g");
  const count = 8000;
  await produce(
    kafka,
    input!,
    Array.from({ length: count }, (_, i) => ({ value: String(i) })),
    500,
  );
  const marker = `${await Deno.makeTempDir()}/never`;
  const p = pipeline({ mode: "workers", signals: false, heartbeatMs: 200 })
    .from(kafkaSource({ brokers: brokers(), topics: input!, groupId, fromBeginning: true }), {
      batchSize: 100,
    })
    .to(faultyKafkaSink({ brokers: brokers(), topic: output! }, { marker, delayMs: 50 }), {
      fuse: false,
    });
  const run = p.run();
  try {
    let samples = 0;
    await waitFor(
      async () => {
        // Read in this order: a later read of `written` can only be larger.
        const committed = await committedTotal(kafka, groupId, input!);
        const pulled = p.counters()["kafka-source"]?.instances[0]?.out ?? 0;
        const written = await endTotal(kafka, output!);
        // Credit bound: the sink's mailbox (8 batches of ≤ 100) + one being written + one pulled.
        assert.ok(pulled - written <= 10 * 100, `pulled ${pulled}, written ${written}`);
        assert.ok(committed <= written, `committed ${committed} > written ${written}`);
        if (written > 0 && written < count / 2) {
          samples++;
          assert.ok(count - committed > count / 2, "lag grows while the sink is slow");
        }
        return written >= count;
      },
      30_000,
      () => "all written",
    );
    assert.ok(samples > 3, `only ${samples} samples while slow`);
  } finally {
    await p.stop();
    await run;
  }
  assert.equal(await committedTotal(kafka, groupId, input!), count);
});

Deno.test("kafkaSource() start: earliest replays committed records, latest skips old ones", async () => {
  const kafka = testKafka();
  const [topic] = await createTopics(kafka, ["src-start"]);
  const groupId = uniqueName("src-start-g");
  await produce(kafka, topic!, ["a", "b", "c"].map((value) => ({ value })));
  const first = await openSource({ topics: topic!, groupId, fromBeginning: true, decoder: "text" });
  try {
    assert.deepEqual((await drain(first, 3)).map((r) => r.value), ["a", "b", "c"]);
  } finally {
    await first.source.close?.(first.ctx);
  }
  assert.equal(await committedTotal(kafka, groupId, topic!), 3);

  const replay = await openSource({ topics: topic!, groupId, start: "earliest", decoder: "text" });
  try {
    assert.deepEqual((await drain(replay, 3)).map((r) => r.value), ["a", "b", "c"]);
  } finally {
    await replay.source.close?.(replay.ctx);
  }

  const latest = await openSource({
    topics: topic!,
    groupId: uniqueName("src-start-latest"),
    start: "latest",
    fromBeginning: true, // overridden by start: "latest"
    decoder: "text",
  });
  try {
    await produce(kafka, topic!, [{ value: "d" }]);
    assert.deepEqual((await drain(latest, 1)).map((r) => r.value), ["d"]);
  } finally {
    await latest.source.close?.(latest.ctx);
  }
});

Deno.test("kafkaSource() hands a revoked partition over from its last commit: nothing lost, duplicates only of unacked records", async () => {
  const kafka = testKafka();
  const [topic] = await createTopics(kafka, ["src-rebalance"], 2);
  const groupId = uniqueName("src-rebalance-g");
  const count = 2000;
  await produce(
    kafka,
    topic!,
    Array.from({ length: count }, (_, i) => ({ key: `k${i}`, value: String(i) })),
  );
  const options = {
    topics: topic!,
    groupId,
    fromBeginning: true,
    decoder: "text" as const,
    sessionTimeoutMs: 6000,
    maxBytesPerPartition: 4096,
  };
  const a = await openSource(options);
  let b: Awaited<ReturnType<typeof openSource>> | undefined;
  try {
    assert.equal(a.source.stats().assigned.length, 2);
    const acked = await drain(a, 300); // acked and committed
    const unacked = await drain(a, 200, { ack: false }); // handed out, never acked
    b = await openSource(options); // joins: one partition moves to b
    await waitFor(() => a.source.stats().assigned.length === 1, 15_000, () => "a rebalance");
    const seen = [...acked, ...unacked];
    const values = new Set(seen.map((r) => r.value as string));
    await waitFor(
      async () => {
        for (const o of [a, b!]) {
          const batch = await o.source.pull({ max: 500, signal: o.abort.signal }, o.ctx);
          for (const r of batch?.records ?? []) {
            values.add(r.value as string);
            seen.push(r);
          }
          if (batch?.position !== undefined) await o.source.ack?.(batch.position, o.ctx);
        }
        return values.size === count;
      },
      20_000,
      () => `${values.size} of ${count} values`,
    );
    const unackedValues = new Set(unacked.map((r) => r.value as string));
    const ackedValues = new Set(acked.map((r) => r.value as string));
    const counts = new Map<string, number>();
    for (const r of seen) counts.set(r.value as string, (counts.get(r.value as string) ?? 0) + 1);
    for (const [value, n] of counts) {
      if (n > 1) {
        assert.ok(unackedValues.has(value), `value ${value} was delivered ${n} times`);
        assert.ok(!ackedValues.has(value));
      }
    }
  } finally {
    await a.source.close?.(a.ctx);
    await b?.source.close?.(b.ctx);
  }
});

Deno.test("kafkaSource() rejects a bad config at build time, naming the path and never the password", () => {
  const base = { brokers: "127.0.0.1:9092", topics: "t", groupId: "g" };
  assert.throws(
    () => kafkaSource({ ...base, groupId: "" }),
    (e) => e instanceof ConfigError && /config\.groupId/.test(e.message),
  );
  assert.throws(
    () => kafkaSource({ ...base, brokers: "no-port" }),
    /config\.brokers\[0\]: expected host:port/,
  );
  const secret = "hunter2-secret";
  assert.throws(
    () =>
      kafkaSource({
        ...base,
        sasl: { mechanism: "gssapi" as "plain", username: "u", password: secret },
      }),
    (e) =>
      e instanceof ConfigError && /config\.sasl\.mechanism/.test(e.message) &&
      !e.message.includes(secret),
  );
});
