import assert from "node:assert/strict";
import { validate } from "../../../processors/validate.ts";
import { harness, rawRef, rec } from "./_harness.ts";

const schemas = new URL("./_schemas.ts", import.meta.url);

Deno.test("validate() emits parsed values with schema defaults applied", async () => {
  const h = await harness(validate(schemas, "OrderSchema"));
  const out = await h.push([rec({ id: "o1", total: 5 }, 2, "k")]);
  assert.deepEqual(out, [{
    key: "k",
    ts: 2,
    value: { id: "o1", total: 5, currency: "EUR", items: [] },
  }]);
});

Deno.test('validate() emits the original value when output is "original"', async () => {
  const h = await harness(validate(schemas, "OrderSchema", { output: "original" }));
  const record = rec({ id: "o1", total: 5, extra: true });
  assert.deepEqual(await h.push([record]), [record]);
});

Deno.test("validate() dead-letters invalid values with every issue's path and message", async () => {
  const h = await harness(validate(schemas, "OrderSchema"));
  await h.push([
    rec({ id: "", total: NaN, items: [{ sku: 1 }] }),
    rec(null),
    rec({ id: "ok", total: 1 }),
  ]);
  assert.equal(h.emitted.length, 1);
  assert.equal(h.dead.length, 2);
  const reason = h.dead[0]?.reason ?? "";
  assert.match(
    reason,
    /^Cannot validate record: value\.id: String must contain at least 1 character/,
  );
  assert.match(reason, /; value\.total: Expected number, received nan/);
  assert.match(reason, /; value\.items\[0\]\.sku: Expected string, received number/);
  assert.match(
    h.dead[1]?.reason ?? "",
    /^Cannot validate record: value: Expected object/,
  );
});

Deno.test("validate() runs async refinements", async () => {
  const h = await harness(validate(schemas, "AsyncSchema"));
  await h.push([rec("good"), rec("bad")]);
  assert.deepEqual(h.emitted.map((r) => r.value), ["good"]);
  assert.equal(h.dead[0]?.reason, "Cannot validate record: value: Must not be bad");
});

Deno.test("validate() on empty input emits nothing and keeps a 100 kB key", async () => {
  const key = "v".repeat(100_000);
  const h = await harness(validate(schemas, "AsyncSchema"));
  assert.deepEqual(await h.push([]), []);
  assert.equal((await h.push([rec("x", 0, key)]))[0]?.key, key);
});

Deno.test("validate() grants its worker read access to the schema module's folder", () => {
  const ref = validate(schemas, "OrderSchema", { parallelism: 2 });
  assert.deepEqual(ref.options, {
    parallelism: 2,
    permissions: { read: [new URL(".", schemas).pathname] },
  });
  assert.deepEqual(ref.config, { module: schemas.href, export: "OrderSchema" });
  const own = validate(schemas, "OrderSchema", { permissions: "none" });
  assert.equal(own.options?.permissions, "none");
});

Deno.test("validate() fails to open with a ConfigError when the export is missing or not a schema", async () => {
  await assert.rejects(() => harness(validate(schemas, "Missing")), {
    name: "ConfigError",
    message: /config\.export: "Missing" of .*_schemas\.ts is not a schema/,
  });
  await assert.rejects(() => harness(validate(schemas, "notASchema")), { name: "ConfigError" });
  const missing = new URL("./does_not_exist.ts", import.meta.url);
  await assert.rejects(() => harness(validate(missing, "X")), {
    name: "ConfigError",
    message: /config\.module: cannot import/,
  });
});

Deno.test("validate() rejects bad configs with a ConfigError naming the zod path", async () => {
  assert.throws(() => validate("./schemas.ts", "OrderSchema"), {
    name: "ConfigError",
    message: /^Cannot configure stage "validate": config\.module: Expected an absolute module URL$/,
  });
  assert.throws(() => validate(schemas, ""), {
    message: /config\.export: String must contain at least 1 character/,
  });
  await assert.rejects(
    () =>
      harness(
        rawRef("validate.ts", "validateStage", {
          module: schemas.href,
          export: "OrderSchema",
          output: "raw",
        }),
      ),
    { message: /config\.output: Invalid enum value/ },
  );
});
