// Kafka → pipeline → Kafka end to end against the real broker: 100 k records in workers mode,
// stop and restart without loss, a sink that is down for 2 s, and the kafka_uppercase example.
import assert from "node:assert/strict";
import { map, pipeline } from "../../mod.ts";
import { kafkaSink, kafkaSource } from "../../connectors/kafka/mod.ts";
import { faultyKafkaSink } from "./fixtures/kafka_fault_sink.ts";
import {
  brokers,
  committedTotal,
  createTopics,
  endTotal,
  produce,
  readTopic,
  testKafka,
  uniqueName,
  waitFor,
} from "./fixtures/kafka_helpers.ts";

const text = new TextDecoder();

/** Values `i|partition|offset` written by the tagging pipelines, as `[i, "p:o"]`. */
function parseTagged(values: (Uint8Array | Buffer | null)[]): [number, string][] {
  return values.map((v) => {
    const [i, p, o] = text.decode(v!).split("|");
    return [Number(i), `${p}:${o}`];
  });
}

/** kafkaSource(text) → tag each value with its source partition and offset → kafkaSink(text). */
function tagging(input: string, output: string, groupId: string, mode: "inline" | "workers") {
  return pipeline({ mode, signals: false, name: uniqueName("kafka-e2e") })
    .from(
      kafkaSource({
        brokers: brokers(),
        topics: input,
        groupId,
        fromBeginning: true,
        decoder: "text",
      }),
    )
    .via(
      map((v: string | null, r) =>
        `${v}|${r.headers?.["kafka.partition"]}|${r.headers?.["kafka.offset"]}`
      ),
    )
    .to(kafkaSink({ brokers: brokers(), topic: output, encoder: "text" }));
}

Deno.test("Kafka → pipeline → Kafka with 100 k records in workers mode: every record arrives", async () => {
  const kafka = testKafka();
  const [input, output] = await createTopics(kafka, ["e2e-in", "e2e-out"], 4);
  const count = 100_000;
  await produce(
    kafka,
    input!,
    Array.from({ length: count }, (_, i) => ({ key: `user-${i % 1000}`, value: String(i) })),
  );
  const groupId = uniqueName("e2e-g");
  const p = tagging(input!, output!, groupId, "workers");
  const started = performance.now();
  const run = p.run();
  try {
    await waitFor(async () => (await endTotal(kafka, output!)) >= count, 40_000, () => "output");
  } finally {
    await p.stop();
  }
  const seconds = (performance.now() - started) / 1000;
  const summary = await run;
  console.log(
    `100k Kafka → Kafka in workers mode: ${seconds.toFixed(2)} s, ` +
      `${Math.round(count / seconds)} records/s (incl. worker start and group join)`,
  );
  const got = parseTagged((await readTopic(kafka, output!, count)).map((m) => m.value));
  assert.equal(new Set(got.map(([i]) => i)).size, count, "every record arrives");
  // A restart (e.g. a worker that missed heartbeats on a loaded machine) may replay records.
  const failures = JSON.stringify(summary.failures);
  if (summary.failures.length === 0) {
    assert.equal(got.length, count, "no duplicates in a clean run");
  } else assert.ok(got.length >= count, failures);
  assert.equal(await committedTotal(kafka, groupId, input!), count, failures);
});

Deno.test("Kafka pipeline stopped mid-run and started again: nothing lost, duplicates only from the uncommitted tail", async () => {
  const kafka = testKafka();
  const [input, output] = await createTopics(kafka, ["e2e-restart-in", "e2e-restart-out"], 2);
  const count = 20_000;
  await produce(
    kafka,
    input!,
    Array.from({ length: count }, (_, i) => ({ key: `k${i}`, value: String(i) })),
    500,
  );
  const groupId = uniqueName("e2e-restart-g");

  const first = tagging(input!, output!, groupId, "inline");
  const run1 = first.run();
  await waitFor(async () => (await endTotal(kafka, output!)) >= 3000, 20_000, () => "first output");
  await first.stop();
  await run1;
  const written1 = await endTotal(kafka, output!);
  const committed = await committedOffsets(kafka, groupId, input!);
  const committedSum = [...committed.values()].reduce((a, b) => a + b, 0);
  assert.ok(written1 < count, "stopped mid-run");
  assert.equal(committedSum, written1, "a graceful stop commits exactly what was written");

  const second = tagging(input!, output!, groupId, "inline");
  const run2 = second.run();
  try {
    await waitFor(
      async () => (await endTotal(kafka, output!)) >= count,
      20_000,
      () => "all output",
    );
  } finally {
    await second.stop();
    await run2;
  }
  const got = parseTagged((await readTopic(kafka, output!, count)).map((m) => m.value));
  assert.equal(new Set(got.map(([i]) => i)).size, count, "nothing lost");
  const seen = new Map<string, number>();
  for (const [, at] of got) seen.set(at, (seen.get(at) ?? 0) + 1);
  for (const [at, n] of seen) {
    if (n === 1) continue;
    const [partition, offset] = at.split(":").map(Number);
    assert.ok(offset! >= committed.get(partition!)!, `${at} written ${n} times but was committed`);
  }
});

Deno.test("Kafka sink down for 2 s: the source backs up, nothing is committed past what was written, all arrives after", async () => {
  const kafka = testKafka();
  const [input, output] = await createTopics(kafka, ["e2e-down-in", "e2e-down-out"], 2);
  const groupId = uniqueName("e2e-down-g");
  const marker = await Deno.makeTempFile({ prefix: "kafka-down-" });
  await Deno.remove(marker);
  const values = (from: number, n: number) =>
    Array.from({ length: n }, (_, i) => ({ key: `k${from + i}`, value: String(from + i) }));
  await produce(kafka, input!, values(0, 2000), 200);
  const p = pipeline({ mode: "workers", signals: false })
    .from(
      kafkaSource({
        brokers: brokers(),
        topics: input!,
        groupId,
        fromBeginning: true,
        decoder: "text",
      }),
    )
    .to(faultyKafkaSink({ brokers: brokers(), topic: output!, encoder: "text" }, { marker }));
  const run = p.run();
  try {
    await waitFor(async () => (await committedTotal(kafka, groupId, input!)) === 2000, 20_000);
    await Deno.writeTextFile(marker, "down");
    await produce(kafka, input!, values(2000, 20_000), 500);
    // Down for 2 s: nothing more is written, so nothing more may be committed.
    const until = Date.now() + 2000;
    while (Date.now() < until) {
      assert.equal(await committedTotal(kafka, groupId, input!), 2000);
      assert.equal(await endTotal(kafka, output!), 2000);
      await new Promise((r) => setTimeout(r, 200));
    }
    const pulled = p.counters()["kafka-source"]?.instances[0]?.out ?? 0;
    assert.ok(pulled - 2000 <= 8 * 512 + 512, `the source kept pulling: ${pulled - 2000} records`);
    await Deno.remove(marker);
    // Up again: every sample of the committed offsets is covered by what is in the output.
    await waitFor(
      async () => {
        const committed = await committedTotal(kafka, groupId, input!);
        const written = await endTotal(kafka, output!);
        assert.ok(committed <= written, `committed ${committed} > written ${written}`);
        return committed === 22_000;
      },
      30_000,
      () => "everything committed",
    );
  } finally {
    await Deno.remove(marker).catch(() => {});
    await p.stop();
    await run;
  }
  const got = (await readTopic(kafka, output!, 22_000)).map((m) => Number(text.decode(m.value!)));
  assert.equal(new Set(got).size, 22_000);
});

Deno.test("examples/kafka_uppercase.ts upper-cases a topic, stops on SIGTERM with exit code 0 and commits everything", async () => {
  const kafka = testKafka();
  const [input, output] = await createTopics(kafka, ["upper-in", "upper-out"], 2);
  const group = uniqueName("upper-g");
  const n = 500;
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "-A",
      new URL("../../examples/kafka_uppercase.ts", import.meta.url).pathname,
      "--brokers",
      brokers().join(","),
      "--input",
      input!,
      "--output",
      output!,
      "--group",
      group,
    ],
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  try {
    await produce(
      kafka,
      input!,
      Array.from({ length: n }, (_, i) => ({ key: `k${i}`, value: `hello ${i}` })),
    );
    await waitFor(
      async () => (await endTotal(kafka, output!)) >= n,
      30_000,
      () => "upper-cased output",
    );
  } finally {
    child.kill("SIGTERM");
  }
  const { code, stdout, stderr } = await child.output();
  assert.equal(code, 0, text.decode(stderr));
  assert.match(text.decode(stdout), new RegExp(`kafka_uppercase: ${n} records`));
  assert.equal(await committedTotal(kafka, group, input!), n);
  const got = await readTopic(kafka, output!, n);
  const byKey = new Map(got.map((m) => [text.decode(m.key!), text.decode(m.value!)]));
  assert.equal(byKey.size, n);
  assert.equal(byKey.get("k42"), "HELLO 42");
});

/** Committed offset per partition of `topic` for `groupId`. */
async function committedOffsets(
  kafka: ReturnType<typeof testKafka>,
  groupId: string,
  topic: string,
): Promise<Map<number, number>> {
  const admin = kafka.admin();
  await admin.connect();
  try {
    const [offsets] = await admin.fetchOffsets({ groupId, topics: [topic] });
    return new Map(
      (offsets?.partitions ?? []).map((p) => [p.partition, Math.max(0, Number(p.offset))]),
    );
  } finally {
    await admin.disconnect();
  }
}
