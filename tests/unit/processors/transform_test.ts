import assert from "node:assert/strict";
import { transform } from "../../../processors/transform.ts";
import { harness, rawRef, rec } from "./_harness.ts";

Deno.test("transform() applies rename, defaults, convert, set, pick and drop in that order", async () => {
  const h = await harness(transform({
    rename: { order_id: "id", amt: "total" },
    defaults: { currency: "EUR", total: "0" },
    convert: { total: "number", paid: "boolean", at: "date" },
    set: { source: "shop" },
    pick: ["id", "total", "currency", "paid", "at", "source", "secret"],
    drop: ["secret"],
  }));
  const out = await h.push([rec(
    {
      order_id: "o1",
      amt: " 12.5 ",
      paid: "yes",
      at: "2024-01-01T00:00:00Z",
      secret: "s",
      noise: 1,
    },
    3,
    "k",
  )]);
  assert.deepEqual(out, [{
    key: "k",
    ts: 3,
    value: {
      id: "o1",
      total: 12.5,
      currency: "EUR",
      paid: true,
      at: Date.UTC(2024, 0, 1),
      source: "shop",
    },
  }]);
});

Deno.test("transform() fills defaults for null fields and converts them afterwards", async () => {
  const h = await harness(transform({ defaults: { n: "7" }, convert: { n: "number" } }));
  assert.deepEqual((await h.push([rec({ n: null }), rec({})])).map((r) => r.value), [{ n: 7 }, {
    n: 7,
  }]);
});

Deno.test("transform() converts numbers, strings, booleans and dates", async () => {
  const h = await harness(transform({
    convert: { a: "string", b: "string", c: "boolean", d: "date", e: "number", f: "date" },
  }));
  const out = await h.push([
    rec({ a: 1.5, b: true, c: 0, d: 1700000000000, e: false, f: "1700000000000" }),
  ]);
  assert.deepEqual(out[0]?.value, {
    a: "1.5",
    b: "true",
    c: false,
    d: 1700000000000,
    e: 0,
    f: 1700000000000,
  });
});

Deno.test("transform() dead-letters a record with an invalid conversion, naming the field", async () => {
  const h = await harness(transform({ convert: { total: "number", at: "date", ok: "boolean" } }));
  await h.push([
    rec({ total: "12x" }),
    rec({ total: NaN }),
    rec({ at: "not a date" }),
    rec({ ok: "maybe" }),
    rec({ total: "" }),
    rec({ total: { n: 1 } }),
    rec({ total: "3" }),
  ]);
  assert.deepEqual(h.emitted.map((r) => r.value), [{ total: 3 }]);
  assert.deepEqual(h.dead.map((d) => d.reason), [
    'Cannot convert field "total" to number: "12x" is not a valid number',
    'Cannot convert field "total" to number: NaN is not a valid number',
    'Cannot convert field "at" to date: "not a date" is not a valid date',
    'Cannot convert field "ok" to boolean: "maybe" is not a valid boolean',
    'Cannot convert field "total" to number: "" is not a valid number',
    'Cannot convert field "total" to number: an object is not a valid number',
  ]);
});

Deno.test("transform() dead-letters values that are not objects", async () => {
  const h = await harness(transform<unknown>({ set: { a: 1 } }));
  await h.push([rec(5), rec([1]), rec(null)]);
  assert.equal(h.emitted.length, 0);
  assert.deepEqual(h.dead.map((d) => d.reason), [
    "Cannot transform record: value is number, not an object",
    "Cannot transform record: value is an array, not an object",
    "Cannot transform record: value is object, not an object",
  ]);
});

Deno.test("transform() does not share set constants between records", async () => {
  const h = await harness(transform({ set: { tags: ["a"] } }));
  const [first, second] = await h.push([rec({}), rec({})]);
  (first?.value as { tags: string[] }).tags.push("mutated");
  assert.deepEqual(second?.value, { tags: ["a"] });
});

Deno.test("transform() on empty input emits nothing; an empty config passes values through", async () => {
  const h = await harness(transform({}));
  assert.deepEqual(await h.push([]), []);
  const key = "t".repeat(100_000);
  assert.deepEqual(await h.push([rec({ a: 1 }, 0, key)]), [{ key, ts: 0, value: { a: 1 } }]);
});

Deno.test("transform() rejects bad configs with a ConfigError naming the zod path", async () => {
  assert.throws(() => transform({ convert: { total: "float" as "number" } }), {
    name: "ConfigError",
    message: /^Cannot configure stage "transform": config\.convert\.total: Invalid enum value/,
  });
  assert.throws(() => transform({ pick: "a" as unknown as string[] }), {
    message: /config\.pick: /,
  });
  assert.throws(() => transform({ rname: {} } as never), {
    message: /Unrecognized key\(s\) in object: 'rname'/,
  });
  assert.throws(() => transform({ set: { a: () => 1 } as never }), { message: /config\.set\.a/ });
  await assert.rejects(() => harness(rawRef("transform.ts", "transformStage", { drop: [""] })), {
    message: /config\.drop\[0\]: String must contain at least 1 character/,
  });
});
