// Smoke test: ioredis against the Redis that `bash scripts/services.sh up` started.
import assert from "node:assert/strict";
import { loadIoredis, type Redis } from "../../stores/redis/_deps.ts";
import { services, uniqueName } from "./_services.ts";

async function connect(): Promise<Redis> {
  const { Redis } = await loadIoredis();
  return new Redis(services().redisUrl, { maxRetriesPerRequest: 2, connectTimeout: 5_000 });
}

Deno.test("Redis smoke: SET then GET returns the value", async () => {
  const redis = await connect();
  try {
    const key = uniqueName("sluice-smoke");
    assert.equal(await redis.set(key, "hello", "EX", 60), "OK");
    assert.equal(await redis.get(key), "hello");
    assert.equal(await redis.get(`${key}-missing`), null);
    assert.equal(await redis.del(key), 1);
    assert.equal(await redis.get(key), null);
  } finally {
    await redis.quit();
  }
});

Deno.test("Redis smoke: a pipeline of 10 000 commands returns every result in order", async () => {
  const redis = await connect();
  try {
    const prefix = uniqueName("sluice-pipe");
    const n = 5_000;
    const pipeline = redis.pipeline();
    for (let i = 0; i < n; i++) {
      pipeline.set(`${prefix}:${i}`, String(i * 7), "EX", 60);
      pipeline.get(`${prefix}:${i}`);
    }
    assert.equal(pipeline.length, 10_000);
    const results = await pipeline.exec();
    assert.ok(results);
    assert.equal(results.length, 10_000);
    for (let i = 0; i < n; i++) {
      assert.deepEqual(results[2 * i], [null, "OK"]);
      assert.deepEqual(results[2 * i + 1], [null, String(i * 7)]);
    }
    const keys = Array.from({ length: n }, (_, i) => `${prefix}:${i}`);
    assert.equal(await redis.del(...keys), n);
  } finally {
    await redis.quit();
  }
});
