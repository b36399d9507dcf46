// redisStreamSource and redisStreamSink against the real Redis that `bash scripts/services.sh up`
// started: 20 k entries end to end, XACK only after the sink wrote, pending entries re-read and
// claimed from a dead consumer, malformed entries dead-lettered, trimming, a stop that does not
// wait for a blocking read.
import assert from "node:assert/strict";
import {
  collect,
  fromArray,
  map,
  memoryDeadLetters,
  pipeline,
  type StreamRecord,
} from "../../mod.ts";
import { redisStreamSink, redisStreamSource } from "../../connectors/redis/mod.ts";
import { loadIoredis, type Redis } from "../../stores/redis/_deps.ts";
import { gated } from "./fixtures/gated_sink.ts";
import { services, uniqueName } from "./_services.ts";

/** Runs `fn` with a client and fresh stream names, deleting the streams afterwards. */
async function withRedis(
  fn: (redis: Redis, name: (prefix: string) => string) => Promise<void>,
): Promise<void> {
  const { Redis } = await loadIoredis();
  const redis = new Redis(services().redisUrl, { maxRetriesPerRequest: 2 });
  const names: string[] = [];
  try {
    await fn(redis, (prefix) => {
      const n = uniqueName(prefix);
      names.push(n);
      return n;
    });
  } finally {
    if (names.length > 0) await redis.del(...names);
    await redis.quit();
  }
}

/** Polls `check` until it holds, failing after `ms` with `what`. */
async function waitFor(check: () => Promise<boolean>, ms: number, what: string): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`Timed out after ${ms} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

/** Appends `n` entries `{ i }` (from `from`) with `data` fields, pipelined. */
async function produce(redis: Redis, stream: string, n: number, from = 0): Promise<void> {
  for (let start = from; start < from + n; start += 5_000) {
    const pipe = redis.pipeline();
    for (let i = start; i < Math.min(from + n, start + 5_000); i++) {
      pipe.xadd(stream, "*", "data", JSON.stringify({ i }), "key", `k${i % 10}`);
    }
    await pipe.exec();
  }
}

/** The `{ i }` values of every entry of a stream. */
async function readAll(redis: Redis, stream: string): Promise<number[]> {
  const entries = await redis.xrange(stream, "-", "+");
  return entries.map(([, fields]) => JSON.parse(fields[fields.indexOf("data") + 1]!).i as number);
}

/** Entries delivered to the group and not acknowledged (0 before the source created the group). */
async function pendingCount(redis: Redis, stream: string, group: string): Promise<number> {
  try {
    const summary = await redis.call("XPENDING", stream, group) as [number, ...unknown[]];
    return Number(summary[0]);
  } catch (error) {
    if (/NOGROUP/.test((error as Error).message)) return 0;
    throw error;
  }
}

Deno.test("Redis stream → pipeline → Redis stream with 20 k entries in workers mode: every entry arrives, none pending", async () => {
  await withRedis(async (redis, name) => {
    const input = name("rs-in");
    const output = name("rs-out");
    const count = 20_000;
    await produce(redis, input, count);
    const p = pipeline({ mode: "workers", signals: false })
      .from(
        redisStreamSource<{ i: number }>({
          url: services().redisUrl,
          stream: input,
          group: "g",
          blockMs: 200,
        }),
      )
      .via(map((v: { i: number }) => ({ i: v.i, double: v.i * 2 })))
      .to(redisStreamSink({ url: services().redisUrl, stream: output }));
    const started = performance.now();
    const run = p.run();
    try {
      await waitFor(async () => (await redis.xlen(output)) >= count, 60_000, "20k outputs");
    } finally {
      await p.stop();
    }
    const summary = await run;
    const seconds = (performance.now() - started) / 1000;
    console.log(`20k Redis → Redis in workers mode: ${Math.round(count / seconds)} records/s`);
    const got = await readAll(redis, output);
    assert.equal(got.length, count, "no duplicates in a clean run");
    assert.deepEqual(
      [...new Set(got)].sort((a, b) => a - b),
      Array.from({ length: count }, (_, i) => i),
    );
    assert.equal(await pendingCount(redis, input, "g"), 0);
    assert.equal(summary.failures.length, 0);
    const [first] = await redis.xrange(output, "-", "+", "COUNT", 1);
    assert.deepEqual(first?.[1], ["data", JSON.stringify({ i: 0, double: 0 }), "key", "k0"]);
  });
});

Deno.test("redisStreamSource() acknowledges (XACK) only after the sink wrote: pending while a slow sink holds them, none after", async () => {
  await withRedis(async (redis, name) => {
    const stream = name("rs-ack");
    await produce(redis, stream, 300);
    const dir = await Deno.makeTempDir({ prefix: "sluice-gate-" });
    const gate = `${dir}/gate`;
    const out = `${dir}/out.ndjson`;
    const p = pipeline({ mode: "workers", signals: false })
      .from(
        redisStreamSource({
          url: services().redisUrl,
          stream,
          group: "g",
          count: 50,
          blockMs: 100,
        }),
      )
      .to(gated(gate, out));
    const run = p.run();
    try {
      await waitFor(async () => (await pendingCount(redis, stream, "g")) > 0, 10_000, "pending");
      // The sink holds its first batch: the entries delivered are all still pending.
      await new Promise((r) => setTimeout(r, 300));
      assert.ok(await pendingCount(redis, stream, "g") >= 50);
      assert.equal(await Deno.stat(out).then(() => true, () => false), false);
      await Deno.writeTextFile(gate, "open");
      const written = async () =>
        (await Deno.readTextFile(out).catch(() => "")).split("\n").filter(Boolean).length;
      await waitFor(async () => (await written()) >= 300, 20_000, "300 written");
      await waitFor(
        async () => (await pendingCount(redis, stream, "g")) === 0,
        10_000,
        "no pending",
      );
    } finally {
      await Deno.writeTextFile(gate, "open");
      await p.stop();
      await run;
      await Deno.remove(dir, { recursive: true });
    }
  });
});

Deno.test("redisStreamSource() re-reads its own pending entries first, and claims a dead consumer's after claimIdleMs", async () => {
  await withRedis(async (redis, name) => {
    const stream = name("rs-claim");
    await produce(redis, stream, 100);
    await redis.call("XGROUP", "CREATE", stream, "g", "0");
    // Two consumers read and die before acknowledging: "alive" (restarted below) and "dead".
    await redis.call("XREADGROUP", "GROUP", "g", "alive", "COUNT", "20", "STREAMS", stream, ">");
    await redis.call("XREADGROUP", "GROUP", "g", "dead", "COUNT", "30", "STREAMS", stream, ">");
    await produce(redis, stream, 50, 100);
    const deadAt = Date.now();
    const out = collect<{ i: number }>();
    const p = pipeline({ mode: "inline", signals: false })
      .from(redisStreamSource<{ i: number }>({
        url: services().redisUrl,
        stream,
        group: "g",
        consumer: "alive",
        claimIdleMs: 700,
        blockMs: 100,
      }))
      .to(out.sink);
    const run = p.run();
    try {
      await waitFor(async () => (await out.values()).length >= 150, 15_000, "150 records");
      await waitFor(
        async () => (await pendingCount(redis, stream, "g")) === 0,
        5_000,
        "no pending",
      );
    } finally {
      await p.stop();
      await run;
    }
    const records = await out.records();
    await out.clear();
    const order = records.map((r) => r.value.i);
    assert.deepEqual([...order].sort((a, b) => a - b), Array.from({ length: 150 }, (_, i) => i));
    // Own pending entries (0–19) come first; the dead consumer's (20–49) only after claimIdleMs.
    assert.deepEqual(order.slice(0, 20), Array.from({ length: 20 }, (_, i) => i));
    const claimedAt = order.indexOf(20);
    assert.ok(order.slice(20, claimedAt).every((i) => i >= 50), "new entries before the claim");
    const consumers = await redis.call("XINFO", "CONSUMERS", stream, "g") as unknown[][];
    const dead = consumers.find((c) => c[1] === "dead")!;
    assert.equal(dead[3], 0, "nothing left pending at the dead consumer");
    assert.ok(Date.now() - deadAt >= 700);
    const r0 = records[0]!;
    assert.equal(r0.key, "k0");
    assert.equal(r0.headers?.["redis.stream"], stream);
    assert.match(r0.headers?.["redis.id"] ?? "", /^\d+-\d+$/);
    assert.equal(r0.ts, Number(r0.headers!["redis.id"]!.split("-")[0]));
  });
});

Deno.test("redisStreamSource() dead-letters an entry whose data is not JSON, with its stream and id", async () => {
  await withRedis(async (redis, name) => {
    const stream = name("rs-bad");
    await redis.xadd(stream, "*", "data", JSON.stringify({ ok: 1 }));
    const badId = await redis.xadd(stream, "*", "data", "{not json", "key", "b");
    await redis.xadd(stream, "*", "plain", "field", "other", "2");
    const dead = memoryDeadLetters();
    const out = collect<unknown>();
    const p = pipeline({ mode: "workers", signals: false, deadLetter: dead })
      .from(redisStreamSource({ url: services().redisUrl, stream, group: "g", blockMs: 100 }))
      .to(out.sink);
    const run = p.run();
    try {
      await waitFor(
        async () => (await out.values()).length >= 2 && dead.entries.length >= 1,
        10_000,
        "records and the dead letter",
      );
      await waitFor(
        async () => (await pendingCount(redis, stream, "g")) === 0,
        5_000,
        "no pending",
      );
    } finally {
      await p.stop();
      await run;
    }
    assert.deepEqual(await out.values(), [{ ok: 1 }, { plain: "field", other: "2" }]);
    await out.clear();
    assert.equal(dead.entries.length, 1);
    const entry = dead.entries[0]!;
    assert.equal(entry.record.headers?.["redis.stream"], stream);
    assert.equal(entry.record.headers?.["redis.id"], badId);
    assert.equal(entry.record.key, "b");
    assert.deepEqual(entry.record.value, { data: "{not json", key: "b" });
    assert.match(entry.error.message, /not JSON/);
    assert.equal(entry.error.code, "E_REDIS_ENTRY");
  });
});

Deno.test("redisStreamSink() trims with MAXLEN ~ and dead-letters a value that is not JSON", async () => {
  await withRedis(async (redis, name) => {
    const stream = name("rs-cap");
    const input: StreamRecord<unknown>[] = Array.from({ length: 5_000 }, (_, i) => ({
      value: { i },
      ts: i,
      headers: { "redis.id": "0-1", origin: "test" },
    }));
    input.push({ key: "big", value: { n: 10n }, ts: 5_000 });
    const dead = memoryDeadLetters();
    await pipeline({ mode: "inline", signals: false, deadLetter: dead })
      .from(fromArray(input))
      .to(redisStreamSink({ url: services().redisUrl, stream, maxLen: 1_000 }))
      .run();
    const len = await redis.xlen(stream);
    assert.ok(len >= 1_000 && len < 1_500, `XLEN ${len} is about 1000`);
    const [last] = await redis.xrevrange(stream, "+", "-", "COUNT", 1);
    assert.deepEqual(last?.[1], ["data", '{"i":4999}', "headers", '{"origin":"test"}']);
    assert.equal(dead.entries.length, 1);
    assert.equal(dead.entries[0]!.record.key, "big");
    assert.match(dead.entries[0]!.error.message, /BigInt/);
  });
});

Deno.test("redisStreamSource() stops without waiting for its blocking read", async () => {
  await withRedis(async (redis, name) => {
    const stream = name("rs-stop");
    await produce(redis, stream, 10);
    const out = collect<unknown>();
    const p = pipeline({ mode: "workers", signals: false })
      .from(redisStreamSource({ url: services().redisUrl, stream, group: "g", blockMs: 60_000 }))
      .to(out.sink);
    const run = p.run();
    try {
      await waitFor(async () => (await out.values()).length >= 10, 10_000, "10 records");
      // The source now blocks in XREADGROUP for up to a minute.
      await new Promise((r) => setTimeout(r, 200));
      const started = Date.now();
      await p.stop();
      await run;
      assert.ok(Date.now() - started < 3_000, `stop took ${Date.now() - started} ms`);
      assert.equal(await pendingCount(redis, stream, "g"), 0);
    } finally {
      await out.clear();
    }
  });
});
