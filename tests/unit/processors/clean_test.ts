import assert from "node:assert/strict";
import { clean } from "../../../processors/clean.ts";
import { harness, rawRef, rec } from "./_harness.ts";

Deno.test("clean() trims strings and drops null, undefined and empty fields, nested too", async () => {
  const h = await harness(clean());
  const out = await h.push([rec({
    name: "  Ada  ",
    empty: "   ",
    gone: null,
    undef: undefined,
    address: { city: " Paris ", zip: "", extra: { none: null } },
    tags: [" a ", "b"],
    n: 0,
    ok: false,
  })]);
  assert.deepEqual(out[0]?.value, {
    name: "Ada",
    address: { city: "Paris" },
    tags: ["a", "b"],
    n: 0,
    ok: false,
  });
});

Deno.test("clean() normalises whitespace and case of chosen fields", async () => {
  const h = await harness(clean({
    collapseWhitespace: ["name", "customer.note"],
    lowercase: ["email"],
    uppercase: ["country"],
  }));
  const out = await h.push([rec({
    name: "  Ada \t\n  Lovelace ",
    email: " Ada@Example.COM",
    country: "fr",
    customer: { note: "a   b" },
    other: "x   y",
  })]);
  assert.deepEqual(out[0]?.value, {
    name: "Ada Lovelace",
    email: "ada@example.com",
    country: "FR",
    customer: { note: "a b" },
    other: "x   y",
  });
});

Deno.test("clean() dead-letters records that end up empty, never dropping them silently", async () => {
  const h = await harness(clean<unknown>());
  await h.push([rec({ a: " ", b: null }), rec({}), rec("   "), rec(null), rec({ a: 1 })]);
  assert.deepEqual(h.emitted.map((r) => r.value), [{ a: 1 }]);
  assert.equal(h.dead.length, 4);
  assert.ok(
    h.dead.every((d) => d.reason === "Cannot clean record: nothing is left after cleaning"),
  );
});

Deno.test("clean() dead-letters records missing a required field after cleaning", async () => {
  const h = await harness(clean({ required: ["email", "customer.id"] }));
  await h.push([
    rec({ email: "  ", customer: { id: 1 } }),
    rec({ email: "a@b.c", customer: {} }),
    rec({ email: "a@b.c", customer: { id: 0 } }),
  ]);
  assert.deepEqual(h.emitted.map((r) => r.value), [{ email: "a@b.c", customer: { id: 0 } }]);
  assert.deepEqual(h.dead.map((d) => d.reason), [
    'Cannot clean record: required field "email" is missing or empty',
    'Cannot clean record: required field "customer.id" is missing or empty',
  ]);
});

Deno.test("clean() can keep empty fields and untrimmed strings when told to", async () => {
  const h = await harness(clean({ trim: false, dropEmpty: false }));
  assert.deepEqual((await h.push([rec({ a: " x ", b: null, c: "" })]))[0]?.value, {
    a: " x ",
    b: null,
    c: "",
  });
});

Deno.test("clean() leaves NaN and non-string values alone and keeps a 100 kB key", async () => {
  const key = "c".repeat(100_000);
  const h = await harness(clean());
  const out = await h.push([rec({ n: NaN, d: 5 }, 0, key)]);
  assert.deepEqual(out, [{ key, ts: 0, value: { n: NaN, d: 5 } }]);
});

Deno.test("clean() on empty input emits nothing", async () => {
  const h = await harness(clean());
  assert.deepEqual(await h.push([]), []);
});

Deno.test("clean() rejects bad configs with a ConfigError naming the zod path", async () => {
  assert.throws(() => clean({ required: "email" as unknown as string[] }), {
    name: "ConfigError",
    message: /^Cannot configure stage "clean": config\.required: Expected array/,
  });
  assert.throws(() => clean({ trim: "yes" as unknown as boolean }), { message: /config\.trim: / });
  await assert.rejects(() => harness(rawRef("clean.ts", "cleanStage", { lowercase: [1] })), {
    message: /config\.lowercase\[0\]: Expected string/,
  });
  assert.throws(() => clean({ upper: [] } as never), {
    message: /Unrecognized key\(s\) in object: 'upper'/,
  });
});
