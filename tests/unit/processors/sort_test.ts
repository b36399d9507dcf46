import assert from "node:assert/strict";
import { sort, sortStage } from "../../../processors/sort.ts";
import { harness, rawRef, rec } from "./_harness.ts";

type P = { price?: unknown; name?: string };
const values = (rs: { value: unknown }[]) => rs.map((r) => r.value);

Deno.test("sort() emits each batch of size records sorted by the keys", async () => {
  const h = await harness(sort<P>({ by: ["-price", "name"], size: 3 }));
  assert.deepEqual(await h.push([rec({ price: 1, name: "a" }), rec({ price: 5, name: "b" })]), []);
  const out = await h.push([rec({ price: 5, name: "a" }), rec({ price: 9, name: "z" })]);
  assert.deepEqual(values(out), [{ price: 5, name: "a" }, { price: 5, name: "b" }, {
    price: 1,
    name: "a",
  }]);
  assert.deepEqual(values(await h.flush()), [{ price: 9, name: "z" }]);
});

Deno.test("sort() puts missing, null and NaN values last in either order, stably", async () => {
  for (const by of ["price", { field: "price", order: "desc" as const }]) {
    const h = await harness(sort<P>({ by, size: 100 }));
    await h.push([
      rec({ price: null, name: "n" }),
      rec({ price: 2 }),
      rec({ name: "m" }),
      rec({ price: NaN }),
      rec({ price: 1 }),
    ]);
    const out = values(await h.flush()) as P[];
    assert.deepEqual(out.slice(0, 2).map((p) => p.price), by === "price" ? [1, 2] : [2, 1]);
    assert.deepEqual(out.slice(2).map((p) => p.name ?? p.price), ["n", "m", NaN]);
  }
});

Deno.test("sort() orders numbers before strings before booleans, and by $key and $ts", async () => {
  const h = await harness(sort({ by: ["price"], size: 4 }));
  assert.deepEqual(
    values(
      await h.push([
        rec({ price: true }),
        rec({ price: "b" }),
        rec({ price: 10 }),
        rec({ price: 9 }),
      ]),
    ).map((v) => (v as P).price),
    [9, 10, "b", true],
  );
  const byKey = await harness(sort({ by: ["$key", "-$ts"] }));
  await byKey.push([rec(1, 1, "b"), rec(2, 1, "a"), rec(3, 2, "a"), rec(4, 0)]);
  assert.deepEqual(values(await byKey.flush()), [3, 2, 1, 4]);
});

Deno.test("sort() emits a partial batch once its first record waited timeoutMs", async () => {
  const h = await harness(sort({ by: "$ts", timeoutMs: 50 }), { now: 1000 });
  await h.push([rec("b", 2), rec("a", 1)]);
  assert.deepEqual(await h.tick(1049), []);
  assert.deepEqual(values(await h.tick(1050)), ["a", "b"]);
  assert.deepEqual(await h.tick(5000), []);
});

Deno.test("sort() within event-time windows emits each window sorted on the watermark", async () => {
  const h = await harness(sort({ by: "$ts", windowMs: 100 }));
  await h.push([rec("c", 99), rec("x", 100), rec("a", 0), rec("b", 50)]);
  assert.deepEqual(await h.advanceWatermark(99), []);
  assert.deepEqual(values(await h.advanceWatermark(100)), ["a", "b", "c"]);
  await h.push([rec("late", 20)]);
  assert.deepEqual(values(h.sideOf("late")), ["late"]);
  assert.deepEqual(values(await h.flush()), ["x"]);
});

Deno.test("sort() on empty input emits nothing and keeps a 100 kB key", async () => {
  const key = "s".repeat(100_000);
  const h = await harness(sort({ by: "$key", size: 2 }));
  assert.deepEqual(await h.flush(), []);
  const out = await h.push([rec(1, 0, key), rec(2, 0, "a")]);
  assert.deepEqual(out.map((r) => r.key?.length), [1, 100_000]);
});

Deno.test("sort() restored from a snapshot into a fresh instance emits the same records", async () => {
  for (const options of [{ by: "-price", size: 10 }, { by: "price", windowMs: 100 }]) {
    const a = await harness(sort<P>(options));
    await a.push([rec({ price: 3 }, 10), rec({ price: 1 }, 120)]);
    const b = await harness(sort<P>(options), { restore: a.snapshot() });
    for (const h of [a, b]) await h.push([rec({ price: 2 }, 20)]);
    assert.deepEqual(await b.flush(), await a.flush());
    assert.equal(b.emitted.length, 3);
  }
});

Deno.test("sort() rejects bad configs with a ConfigError naming the zod path", async () => {
  assert.throws(() => sort({ by: "price", size: 10, windowMs: 1000 }), {
    name: "ConfigError",
    message:
      /^Cannot configure stage "sort": config\.windowMs: Cannot combine with size or timeoutMs$/,
  });
  assert.throws(() => sort({ by: [] }), { message: /config\.by: / });
  assert.throws(() => sort({ by: { field: "a", order: "up" as never } }), {
    message: /config\.by/,
  });
  assert.throws(() => sort({ by: "a", size: 1.5 }), {
    message: /config\.size: Expected integer/,
  });
  await assert.rejects(() => harness(rawRef("sort.ts", "sortStage", { size: 1 })), {
    message: /config\.by: /,
  });
  assert.equal(sortStage.stateful, true);
});

Deno.test("sort() within event-time windows dead-letters records whose ts is NaN", async () => {
  const h = await harness(sort({ by: "$ts", windowMs: 100 }));
  await h.push([rec("x", NaN), rec("y", 1)]);
  assert.equal(h.dead[0]?.reason, "Cannot sort record: ts is NaN, not a finite number");
  assert.deepEqual(values(await h.flush()), ["y"]);
});
