import assert from "node:assert/strict";
import { mapRecord } from "../../../processors/map_record.ts";
import { harness, rawRef, rec } from "./_harness.ts";

type Order = { customer: string; at: number };

Deno.test("mapRecord() may change key, ts and headers", async () => {
  const h = await harness(
    mapRecord((r: { value: Order; ts: number }) => ({
      key: r.value.customer,
      ts: r.value.at,
      value: r.value,
      headers: { source: "orders" },
    })),
  );
  const out = await h.push([rec({ customer: "c1", at: 500 }, 9)]);
  assert.deepEqual(out, [
    { key: "c1", ts: 500, value: { customer: "c1", at: 500 }, headers: { source: "orders" } },
  ]);
});

Deno.test("mapRecord() drops records for which the function returns null", async () => {
  const h = await harness(mapRecord((r: { value: number; ts: number }) => r.value > 1 ? r : null));
  assert.deepEqual((await h.push([rec(1), rec(2)])).map((r) => r.value), [2]);
  assert.equal(h.dead.length, 0);
});

Deno.test("mapRecord() dead-letters results with a NaN ts, a non-string key or no value", async () => {
  const h = await harness(mapRecord((r: { value: unknown; ts: number }) => r.value as never));
  await h.push([
    rec({ value: 1, ts: NaN }),
    rec({ value: 1, ts: 0, key: 5 }),
    rec({ ts: 0 }),
    rec({ value: 1, ts: 0, key: "ok" }),
  ]);
  assert.deepEqual(h.emitted, [{ value: 1, ts: 0, key: "ok" }]);
  assert.deepEqual(h.dead.map((d) => d.reason.replace(/:.*/, "")), [
    "Cannot map record",
    "Cannot map record",
    "Cannot map record",
  ]);
  assert.match(h.dead[0]?.reason ?? "", /ts is NaN/);
});

Deno.test("mapRecord() on empty input emits nothing and keeps a 100 kB key", async () => {
  const key = "m".repeat(100_000);
  const h = await harness(mapRecord((r: { value: number; ts: number; key?: string }) => r));
  assert.deepEqual(await h.push([]), []);
  assert.equal((await h.push([rec(1, 0, key)]))[0]?.key, key);
});

Deno.test("mapRecord() rejects bad configs with a ConfigError naming the zod path", async () => {
  await assert.rejects(() => harness(rawRef("map_record.ts", "mapRecordStage", { fun: 1 })), {
    name: "ConfigError",
    message: /config\.fn: Required; config: Unrecognized key\(s\) in object: 'fun'/,
  });
});
