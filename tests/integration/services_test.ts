// Tests of scripts/services.sh itself: idempotent `up`, `restart kafka` with Kafka usable (and its
// data kept) afterwards, and a clear error when a port is taken.
//
// `restart` runs against a second, private Kafka (own SLUICE_SERVICES_DIR and ports), so that
// test files running in parallel against the shared servers never see their broker vanish.
import assert from "node:assert/strict";
import { type kafkajs as Kafkajs, loadKafkajs } from "../../connectors/kafka/_deps.ts";
import { servicesDir, uniqueName } from "./_services.ts";

const kafkajs = await loadKafkajs();

const SCRIPT = decodeURIComponent(new URL("../../scripts/services.sh", import.meta.url).pathname);
const PRIVATE_KAFKA_PORT = 19092;
const PRIVATE_ENV = {
  SLUICE_SERVICES_DIR: `${servicesDir()}-services-test`,
  SLUICE_KAFKA_PORT: String(PRIVATE_KAFKA_PORT),
  SLUICE_KAFKA_CONTROLLER_PORT: "19093",
};

interface Run {
  code: number;
  out: string;
  err: string;
  ms: number;
}

async function services(args: string[], env: Record<string, string> = {}): Promise<Run> {
  const t0 = performance.now();
  const { code, stdout, stderr } = await new Deno.Command("bash", {
    args: [SCRIPT, ...args],
    env,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).output();
  const dec = new TextDecoder();
  return { code, out: dec.decode(stdout), err: dec.decode(stderr), ms: performance.now() - t0 };
}

function assertOk(run: Run, what: string): void {
  assert.equal(run.code, 0, `${what} failed (exit ${run.code}):\n${run.out}\n${run.err}`);
}

/** Service name → pid, from lines like `kafka: started (pid 123) at ...`. */
function pids(out: string): Record<string, string> {
  const found: Record<string, string> = {};
  for (const m of out.matchAll(/^(\w+): (?:already running|started|running) \(pid (\d+)\)/gm)) {
    found[m[1]!] = m[2]!;
  }
  return found;
}

Deno.test("Services: a second `up` is a fast no-op that keeps the same processes", async () => {
  const first = await services(["up"]);
  assertOk(first, "services.sh up");
  const before = pids(first.out);
  assert.deepEqual(Object.keys(before).sort(), ["kafka", "mongo", "redis"], first.out);

  const second = await services(["up"]);
  assertOk(second, "second services.sh up");
  for (const name of ["kafka", "redis", "mongo"]) {
    assert.match(second.out, new RegExp(`^${name}: already running \\(pid \\d+\\)`, "m"));
  }
  assert.doesNotMatch(second.out, /started/);
  assert.deepEqual(pids(second.out), before);
  assert.ok(second.ms < 10_000, `second up took ${Math.round(second.ms)} ms`);

  const status = await services(["status"]);
  assertOk(status, "services.sh status");
  assert.deepEqual(pids(status.out), before);

  const env = await services(["env"]);
  assertOk(env, "services.sh env");
  assert.match(env.out, /^export SLUICE_KAFKA_BROKERS=127\.0\.0\.1:\d+$/m);
  assert.match(env.out, /^export SLUICE_REDIS_URL=redis:\/\/127\.0\.0\.1:\d+$/m);
  assert.match(env.out, /^export SLUICE_MONGO_URL=mongodb:\/\/127\.0\.0\.1:\d+$/m);
});

async function produce(kafka: Kafkajs.Kafka, topic: string, value: string): Promise<void> {
  const producer = kafka.producer({ createPartitioner: kafkajs.Partitioners.DefaultPartitioner });
  await producer.connect();
  try {
    await producer.send({ topic, messages: [{ value }] });
  } finally {
    await producer.disconnect();
  }
}

async function consumeValues(kafka: Kafkajs.Kafka, topic: string, n: number): Promise<string[]> {
  const consumer = kafka.consumer({ groupId: uniqueName("sluice-services-test") });
  const got: string[] = [];
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    await consumer.connect();
    await consumer.subscribe({ topic, fromBeginning: true });
    await new Promise<void>((resolve, reject) => {
      timer = setTimeout(() => reject(new Error(`got ${got.length} of ${n}: ${got}`)), 30_000);
      consumer.run({
        eachMessage: ({ message }) => {
          got.push(new TextDecoder().decode(message.value ?? new Uint8Array()));
          if (got.length >= n) resolve();
          return Promise.resolve();
        },
      }).catch(reject);
    });
    return got;
  } finally {
    clearTimeout(timer);
    await consumer.disconnect();
  }
}

Deno.test("Services: `restart kafka` brings Kafka back with its data; produce and consume work", async () => {
  const up = await services(["up", "kafka"], PRIVATE_ENV);
  assertOk(up, "services.sh up kafka (private instance)");
  const before = pids(up.out).kafka;
  assert.ok(before, up.out);
  try {
    const kafka = new kafkajs.Kafka({
      clientId: "sluice-services-test",
      brokers: [`127.0.0.1:${PRIVATE_KAFKA_PORT}`],
      logLevel: kafkajs.logLevel.NOTHING,
      retry: { retries: 10, initialRetryTime: 200 },
    });
    const topic = uniqueName("sluice-restart");
    await produce(kafka, topic, "before-restart");

    const restart = await services(["restart", "kafka"], PRIVATE_ENV);
    assertOk(restart, "services.sh restart kafka");
    assert.match(restart.out, /^kafka: stopped \(was pid \d+\)$/m);
    const after = pids(restart.out).kafka;
    assert.ok(after, restart.out);
    assert.notEqual(after, before);

    const status = await services(["status", "kafka"], PRIVATE_ENV);
    assertOk(status, "services.sh status kafka");
    assert.equal(pids(status.out).kafka, after);

    await produce(kafka, topic, "after-restart");
    assert.deepEqual(await consumeValues(kafka, topic, 2), ["before-restart", "after-restart"]);
  } finally {
    assertOk(await services(["down", "kafka"], PRIVATE_ENV), "services.sh down kafka");
  }
});

Deno.test("Services: `up` fails fast with a clear error when a port is taken", async () => {
  using listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  const run = await services(["up", "redis"], {
    ...PRIVATE_ENV,
    SLUICE_REDIS_PORT: String(port),
  });
  assert.notEqual(run.code, 0);
  assert.match(run.err, new RegExp(`port 127\\.0\\.0\\.1:${port} is taken`));
  assert.ok(run.ms < 10_000, `took ${Math.round(run.ms)} ms`);
});
