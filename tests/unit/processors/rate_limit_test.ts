import assert from "node:assert/strict";
import { rateLimit, rateLimitStage } from "../../../processors/rate_limit.ts";
import { harness, rawRef, rec } from "./_harness.ts";

const values = (rs: { value: unknown }[]) => rs.map((r) => r.value);
const settle = () => new Promise((resolve) => setTimeout(resolve, 0));

Deno.test("rateLimit() passes one record per token and releases held ones on ticks", async () => {
  const h = await harness(rateLimit<number>({ perSecond: 10 }));
  assert.deepEqual(values(await h.push([rec(1), rec(2), rec(3)])), [1]);
  assert.deepEqual(await h.tick(99), []);
  assert.deepEqual(values(await h.tick(100)), [2]);
  assert.deepEqual(values(await h.tick(250)), [3]);
  assert.deepEqual(await h.tick(1000), []);
});

Deno.test("rateLimit() lets a burst through after a quiet spell, then keeps the rate", async () => {
  const h = await harness(rateLimit<number>({ perSecond: 100, burst: 5 }));
  const input = Array.from({ length: 10 }, (_, i) => rec(i));
  assert.deepEqual(values(await h.push(input)), [0, 1, 2, 3, 4]);
  assert.deepEqual(values(await h.tick(10)), [5]);
  assert.deepEqual(values(await h.tick(50)), [6, 7, 8, 9]);
});

Deno.test("rateLimit() never drops records and keeps their order", async () => {
  const h = await harness(rateLimit<number>({ perSecond: 1000, burst: 10 }));
  const input = Array.from({ length: 500 }, (_, i) => rec(i, i, `k${i % 7}`));
  await h.push(input);
  for (let t = 10; h.emitted.length < 500; t += 10) await h.tick(t);
  assert.deepEqual(h.emitted, input);
  assert.equal(h.now, 490);
});

Deno.test("rateLimit() makes process wait once maxHeld records are held (backpressure)", async () => {
  const h = await harness(rateLimit<string>({ perSecond: 10, maxHeld: 1 }));
  let done = false;
  const pushed = h.push([rec("a"), rec("b"), rec("c")]).then((out) => (done = true, out));
  await settle();
  assert.equal(done, false);
  await h.tick(100);
  assert.deepEqual(values(await pushed), ["a", "b"]);
  assert.deepEqual(values(await h.tick(200)), ["c"]);
});

Deno.test("rateLimit() flush waits until every held record has passed at the rate", async () => {
  const h = await harness(rateLimit<string>({ perSecond: 10 }));
  await h.push([rec("a"), rec("b"), rec("c")]);
  let done = false;
  const flushed = h.flush().then(() => (done = true));
  await h.tick(100);
  await settle();
  assert.equal(done, false);
  await h.tick(200);
  await flushed;
  assert.deepEqual(values(h.emitted), ["a", "b", "c"]);
});

Deno.test("rateLimit() ignores a clock that goes backwards", async () => {
  const h = await harness(rateLimit<number>({ perSecond: 10 }), { now: 1000 });
  await h.push([rec(1), rec(2)]);
  assert.deepEqual(await h.tick(0), []);
  assert.deepEqual(await h.tick(1099), []);
  assert.deepEqual(values(await h.tick(1100)), [2]);
});

Deno.test("rateLimit() on empty input emits nothing; NaN values and a 100 kB key pass", async () => {
  const key = "r".repeat(100_000);
  const h = await harness(rateLimit<number | null>({ perSecond: 1, burst: 2 }));
  assert.deepEqual(await h.push([]), []);
  assert.deepEqual(await h.flush(), []);
  const out = await h.push([rec(NaN, 0, key), rec(null, 0, key)]);
  assert.deepEqual(values(out), [NaN, null]);
  assert.equal(out[0]?.key, key);
});

Deno.test("rateLimit() restored from a snapshot into a fresh instance releases the same records", async () => {
  const ref = rateLimit<number>({ perSecond: 10 });
  const a = await harness(ref);
  await a.push([rec(1), rec(2), rec(3)]);
  const b = await harness(ref, { restore: a.snapshot() });
  assert.deepEqual(await b.tick(100), await a.tick(100));
  assert.deepEqual(values(await b.tick(200)), [3]);
});

Deno.test("rateLimit() stops waiting when the stage closes, keeping what it holds", async () => {
  const h = await harness(rateLimit<number>({ perSecond: 0.001, maxHeld: 0 }));
  const pushed = h.push([rec(1), rec(2)]);
  await settle();
  await h.close();
  assert.deepEqual(values(await pushed), [1]);
  assert.deepEqual((h.snapshot().extra as { held: unknown[] }).held.length, 1);
});

Deno.test("rateLimit() rejects bad configs with a ConfigError naming the zod path", async () => {
  assert.throws(() => rateLimit({ perSecond: 0 }), {
    name: "ConfigError",
    message:
      /^Cannot configure stage "rateLimit": config\.perSecond: Number must be greater than 0$/,
  });
  assert.throws(() => rateLimit({} as never), { message: /config\.perSecond: Required/ });
  assert.throws(() => rateLimit({ perSecond: 1, burst: 0 }), {
    message: /config\.burst: Number must be greater than/,
  });
  assert.throws(() => rateLimit({ perSecond: Infinity }), { message: /config\.perSecond: / });
  await assert.rejects(
    () => harness(rawRef("rate_limit.ts", "rateLimitStage", { perSecond: 1, drop: true })),
    {
      message: /Unrecognized key\(s\) in object: 'drop'/,
    },
  );
  assert.equal(rateLimitStage.stateful, true);
});
