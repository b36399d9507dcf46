import assert from "node:assert/strict";
import { flatMap } from "../../../processors/flat_map.ts";
import { harness, rawRef, rec } from "./_harness.ts";

Deno.test("flatMap() emits every value of the returned iterable with the input's key and ts", async () => {
  const h = await harness(flatMap((line: string) => line.split(" ")));
  const out = await h.push([rec("a b", 3, "k"), rec("c", 4)]);
  assert.deepEqual(out, [
    { key: "k", value: "a", ts: 3 },
    { key: "k", value: "b", ts: 3 },
    { value: "c", ts: 4 },
  ]);
});

Deno.test("flatMap() accepts generators, empty arrays and null", async () => {
  const h = await harness(flatMap(function* (n: number) {
    for (let i = 0; i < n; i++) yield i;
  }));
  assert.deepEqual((await h.push([rec(3), rec(0)])).map((r) => r.value), [0, 1, 2]);
  const none = await harness(flatMap((_v: number) => null as unknown as number[]));
  assert.deepEqual(await none.push([rec(1)]), []);
});

Deno.test("flatMap() awaits async functions", async () => {
  const h = await harness(flatMap(async (v: number) => await Promise.resolve([v, v])));
  assert.deepEqual((await h.push([rec(7)])).map((r) => r.value), [7, 7]);
});

Deno.test("flatMap() dead-letters a record whose function returns a non-iterable", async () => {
  const h = await harness(flatMap((v: unknown) => v as number[]));
  await h.push([rec(42), rec("str"), rec([1])]);
  assert.deepEqual(h.emitted.map((r) => r.value), [1]);
  assert.equal(h.dead.length, 2);
  assert.match(h.dead[0]?.reason ?? "", /not an iterable/);
});

Deno.test("flatMap() on empty input emits nothing", async () => {
  const h = await harness(flatMap((v: number) => [v]));
  assert.deepEqual(await h.push([]), []);
});

Deno.test("flatMap() keeps NaN and null elements and a 100 kB key", async () => {
  const key = "x".repeat(100_000);
  const h = await harness(flatMap((_v: number) => [NaN, null]));
  const out = await h.push([rec(1, 0, key)]);
  assert.deepEqual(out.map((r) => r.value), [NaN, null]);
  assert.equal(out[1]?.key, key);
});

Deno.test("flatMap() rejects bad configs with a ConfigError naming the zod path", async () => {
  await assert.rejects(() => harness(rawRef("flat_map.ts", "flatMapStage", { fn: { fn: "" } })), {
    name: "ConfigError",
    message: /config\.fn\.fn: String must contain at least 1 character/,
  });
});
