import assert from "node:assert/strict";
import { map, mapStage } from "../../../processors/map.ts";
import { harness, rawRef, rec } from "./_harness.ts";

Deno.test("map() transforms values and keeps key, ts and headers", async () => {
  const h = await harness(map((v: number) => v * 2));
  const out = await h.push([{ key: "a", value: 21, ts: 5, headers: { h: "1" } }]);
  assert.deepEqual(out, [{ key: "a", value: 42, ts: 5, headers: { h: "1" } }]);
});

Deno.test("map() passes the whole record as the second argument", async () => {
  const h = await harness(map((v: number, r) => `${r.key}:${v}@${r.ts}`));
  assert.equal((await h.push([rec(1, 7, "k")]))[0]?.value, "k:1@7");
});

Deno.test("map() awaits async functions", async () => {
  const h = await harness(map(async (v: number) => await Promise.resolve(v + 1)));
  assert.deepEqual((await h.push([rec(1), rec(2)])).map((r) => r.value), [2, 3]);
});

Deno.test("map() on empty input emits nothing", async () => {
  const h = await harness(map((v: number) => v));
  assert.deepEqual(await h.push([]), []);
  assert.deepEqual(await h.flush(), []);
});

Deno.test("map() dead-letters a record whose function throws, after retries", async () => {
  const h = await harness(map((v: { n: number }) => v.n.toFixed(0)));
  const out = await h.push([rec({ n: 1 }), rec(null as unknown as { n: number }), rec({ n: 2 })]);
  assert.deepEqual(out.map((r) => r.value), ["1", "2"]);
  assert.equal(h.dead.length, 1);
  assert.equal(h.dead[0]?.record.value, null);
  assert.match(h.dead[0]?.reason ?? "", /null/);
});

Deno.test("map() keeps a 100 kB key", async () => {
  const key = "k".repeat(100_000);
  const h = await harness(map((v: number) => -v));
  assert.equal((await h.push([rec(3, 0, key)]))[0]?.key, key);
});

Deno.test("map() sees NaN and null values like any other", async () => {
  const h = await harness(
    map((v: number | null) => v === null ? "null" : Number.isNaN(v) ? "nan" : v),
  );
  assert.deepEqual((await h.push([rec(NaN), rec(null)])).map((r) => r.value), ["nan", "null"]);
});

Deno.test("map() rejects a function that references outer variables", () => {
  const factor = 2;
  assert.throws(() => map((v: number) => v * factor), { name: "TypeError", message: /factor/ });
});

Deno.test("map() rejects bad configs with a ConfigError naming the zod path", async () => {
  const ref = (config: unknown) => rawRef("map.ts", "mapStage", config);
  await assert.rejects(() => harness(ref({ fn: { fn: 42 } })), {
    name: "ConfigError",
    message: /^Cannot configure stage "map": config\.fn\.fn: Expected string/,
  });
  await assert.rejects(() => harness(ref({ fn: { fn: "(x) => x" }, extra: 1 })), {
    name: "ConfigError",
    message: /config: Unrecognized key\(s\) in object: 'extra'/,
  });
  await assert.rejects(() => harness(ref({})), { name: "ConfigError", message: /config\.fn:/ });
  assert.equal(mapStage.stateful, undefined);
});
