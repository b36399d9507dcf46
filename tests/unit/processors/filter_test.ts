import assert from "node:assert/strict";
import { filter } from "../../../processors/filter.ts";
import type { StageRef } from "../../../actors/stage_ref.ts";
import { harness, rawRef, rec } from "./_harness.ts";

Deno.test("filter() keeps the records the predicate accepts, in order", async () => {
  const h = await harness(filter((v: number) => v % 2 === 0));
  const out = await h.push([rec(1), rec(2), rec(3), rec(4)]);
  assert.deepEqual(out.map((r) => r.value), [2, 4]);
});

Deno.test("filter() passes records through unchanged, key and headers included", async () => {
  const h = await harness(filter((_v: string, r) => r.key === "keep"));
  const record = { key: "keep", value: "x", ts: 9, headers: { a: "b" } };
  assert.deepEqual(await h.push([record, rec("y", 1, "drop")]), [record]);
});

Deno.test("filter() narrows with a type guard and awaits async predicates", async () => {
  const h = await harness(
    filter(async (v: string | number) => await Promise.resolve(typeof v === "string")),
  );
  assert.deepEqual((await h.push([rec("a"), rec(1), rec("b")])).map((r) => r.value), ["a", "b"]);
  const guard = filter((v: string | number): v is string => typeof v === "string");
  const typed: StageRef<string | number, string> = guard;
  assert.ok(typed);
});

Deno.test("filter() on empty input emits nothing", async () => {
  const h = await harness(filter(() => true));
  assert.deepEqual(await h.push([]), []);
});

Deno.test("filter() treats NaN and null predicate results as false", async () => {
  const h = await harness(
    filter((v: number | null) => (v === null ? null : v) as unknown as boolean),
  );
  const out = await h.push([rec(NaN), rec(null), rec(0), rec(5)]);
  assert.deepEqual(out.map((r) => r.value), [5]);
});

Deno.test("filter() dead-letters a record whose predicate throws", async () => {
  const h = await harness(filter((v: { ok: boolean }) => v.ok));
  await h.push([rec(undefined as unknown as { ok: boolean }), rec({ ok: true })]);
  assert.equal(h.emitted.length, 1);
  assert.equal(h.dead.length, 1);
});

Deno.test("filter() keeps a 100 kB key", async () => {
  const key = "f".repeat(100_000);
  const h = await harness(filter(() => true));
  assert.equal((await h.push([rec(1, 0, key)]))[0]?.key, key);
});

Deno.test("filter() rejects bad configs with a ConfigError naming the zod path", async () => {
  await assert.rejects(() => harness(rawRef("filter.ts", "filterStage", { fn: "x => x" })), {
    name: "ConfigError",
    message: /^Cannot configure stage "filter": config\.fn: Expected object/,
  });
  assert.throws(() => filter("nope" as unknown as () => boolean), TypeError);
});
