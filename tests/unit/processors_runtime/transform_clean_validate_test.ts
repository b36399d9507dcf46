// transform, clean and validate run through the runtime in inline and workers modes.
import assert from "node:assert/strict";
import { clean, transform, validate } from "../../../mod.ts";
import { dead, hugeKey, modeTest, rec, run, values, wm } from "./_modes.ts";

const HUGE = hugeKey();

modeTest(
  "transform() renames, defaults, converts, sets and drops; bad values are dead-lettered",
  async (mode) => {
    const t = () =>
      transform({
        rename: { qty: "quantity" },
        defaults: { currency: "EUR" },
        convert: { price: "number", paid: "boolean", at: "date" },
        set: { v: 1 },
        drop: ["secret"],
      });
    const empty = await run(mode, (f) => f.via(t()), []);
    assert.deepEqual([empty.output, empty.deadLetters], [[], []]);

    const input = [
      rec(
        {
          qty: 2,
          price: "9.5",
          paid: "yes",
          at: "1970-01-01T00:00:01Z",
          secret: "s",
          currency: null,
        },
        1,
        "a",
      ),
      rec({ price: NaN }, 2, "b"),
      wm(2),
      rec({ price: null, qty: 1 }, 3, HUGE, { line: "3" }),
      rec("not an object", 4, "d"),
      rec({ price: "abc" }, 5, "e"),
    ];
    const result = await run(mode, (f) => f.via(t()), input);
    assert.deepEqual(result.output, [
      rec({ quantity: 2, price: 9.5, paid: true, at: 1000, currency: "EUR", v: 1 }, 1, "a"),
      rec({ price: null, quantity: 1, currency: "EUR", v: 1 }, 3, HUGE, { line: "3" }),
    ]);
    const stage = "transform", attempts = 3;
    assert.deepEqual(dead(result), [
      {
        stage,
        attempts,
        message: 'Cannot convert field "price" to number: NaN is not a valid number',
        record: rec({ price: NaN }, 2, "b"),
      },
      {
        stage,
        attempts,
        message: "Cannot transform record: value is string, not an object",
        record: rec("not an object", 4, "d"),
      },
      {
        stage,
        attempts,
        message: 'Cannot convert field "price" to number: "abc" is not a valid number',
        record: rec({ price: "abc" }, 5, "e"),
      },
    ]);

    const picked = await run(mode, (f) => f.via(transform({ pick: ["a", "b"] })), [
      rec({ a: 1, c: 3 }, 0),
      rec({ a: null, b: [1], z: 0 }, 1),
    ]);
    assert.deepEqual(values(picked), [{ a: 1 }, { a: null, b: [1] }]);
  },
);

modeTest(
  "clean() trims, drops empties, lower-cases and collapses; missing required fields are dead-lettered",
  async (mode) => {
    const c = () =>
      clean({ lowercase: ["email"], collapseWhitespace: ["name"], required: ["email"] });
    assert.deepEqual((await run(mode, (f) => f.via(c()), [])).output, []);
    const input = [
      rec({ name: "  Ann   Lee ", email: " ANN@X.IO ", note: "", tags: [" a "], meta: {} }, 1, "a"),
      rec({ name: "Bob", email: "   " }, 2, "b"),
      rec({ email: null, x: "  " }, 3, "c"),
      rec({ email: "a@b", n: null, nested: { deep: " v ", gone: null } }, 4, HUGE),
    ];
    const result = await run(mode, (f) => f.via(c()), input);
    assert.deepEqual(result.output, [
      rec({ name: "Ann Lee", email: "ann@x.io", tags: ["a"] }, 1, "a"),
      rec({ email: "a@b", nested: { deep: "v" } }, 4, HUGE),
    ]);
    assert.deepEqual(dead(result), [
      {
        stage: "clean",
        attempts: 3,
        message: 'Cannot clean record: required field "email" is missing or empty',
        record: rec({ name: "Bob", email: "   " }, 2, "b"),
      },
      {
        stage: "clean",
        attempts: 3,
        message: "Cannot clean record: nothing is left after cleaning",
        record: rec({ email: null, x: "  " }, 3, "c"),
      },
    ]);
  },
);

modeTest(
  "validate() emits parsed values and dead-letters NaN, null and too-short fields with their paths",
  async (mode) => {
    const v = () => validate(new URL("./_schemas.ts", import.meta.url), "OrderSchema");
    assert.deepEqual((await run(mode, (f) => f.via(v()), [])).output, []);
    const input = [
      rec({ id: "a", total: 5 }, 1, "a"),
      rec({ id: "b", total: NaN }, 2, "b"),
      rec({ id: "", total: 1 }, 3, "c"),
      rec({ id: "d", total: null, currency: "USD" }, 4, "d"),
      rec({ id: "e", total: 0, currency: "USD" }, 5, HUGE),
    ];
    const result = await run(mode, (f) => f.via(v()), input);
    assert.deepEqual(result.output, [
      rec({ id: "a", total: 5, currency: "EUR" }, 1, "a"),
      rec({ id: "e", total: 0, currency: "USD" }, 5, HUGE),
    ]);
    const d = dead(result);
    assert.deepEqual(d.map((x) => [x.stage, x.attempts, x.record.key, x.message]), [
      [
        "validate",
        3,
        "b",
        "Cannot validate record: value.total: Expected number, received nan",
      ],
      [
        "validate",
        3,
        "c",
        "Cannot validate record: value.id: String must contain at least 1 character(s)",
      ],
      [
        "validate",
        3,
        "d",
        "Cannot validate record: value.total: Expected number, received null",
      ],
    ]);
    assert.deepEqual(d.map((x) => x.record), [input[1], input[2], input[3]]);

    const original = validate(new URL("./_schemas.ts", import.meta.url), "OrderSchema", {
      output: "original",
    });
    assert.deepEqual((await run(mode, (f) => f.via(original), [input[0]!])).output, [input[0]]);
  },
);
