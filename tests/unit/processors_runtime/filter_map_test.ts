// filter, map, flatMap and mapRecord run through the runtime in inline and workers modes.
import assert from "node:assert/strict";
import { filter, flatMap, map, mapRecord } from "../../../mod.ts";
import { dead, hugeKey, modeTest, rec, run, wm } from "./_modes.ts";

type N = { n: number | null };
const HUGE = hugeKey();

modeTest(
  "filter() keeps matching records in order, untouched, and ignores NaN/null fields",
  async (mode) => {
    const keep = () => filter((v: N) => (v.n as number) > 1);
    const empty = await run(mode, (f) => f.via(keep()), []);
    assert.deepEqual(empty.output, []);
    assert.deepEqual(empty.deadLetters, []);

    const input = [
      rec({ n: 1 }, 10, "a", { src: "f:1" }),
      rec({ n: 2 }, 20, "b", { src: "f:2" }),
      wm(25),
      rec({ n: NaN }, 30, "c"),
      rec({ n: null }, 40, "d"),
      rec({ n: 3 }, 50, HUGE),
      rec({ n: 9 }, 5),
    ];
    const result = await run(mode, (f) => f.via(keep()), input);
    assert.deepEqual(result.output, [
      rec({ n: 2 }, 20, "b", { src: "f:2" }),
      rec({ n: 3 }, 50, HUGE),
      rec({ n: 9 }, 5),
    ]);
    assert.deepEqual(result.deadLetters, []);
    assert.equal(result.summary.stages.filter?.in, 6);
    assert.equal(result.summary.stages.filter?.out, 3);
  },
);

modeTest(
  "filter() dead-letters a record whose predicate throws after 2 retries; async predicates work",
  async (mode) => {
    type Nested = { a: { b: number } | null };
    const input = [rec<Nested>({ a: { b: 1 } }, 1, "x"), rec<Nested>({ a: null }, 2, "y")];
    const result = await run(mode, (f) => f.via(filter((v: Nested) => v.a!.b > 0)), input);
    assert.deepEqual(result.output, [rec({ a: { b: 1 } }, 1, "x")]);
    assert.deepEqual(dead(result), [{
      stage: "filter",
      message: "Cannot read properties of null (reading 'b')",
      attempts: 3,
      record: rec({ a: null }, 2, "y"),
    }]);

    const even = filter(async (v: number) => await Promise.resolve(v % 2 === 0));
    const asyncResult = await run(mode, (f) => f.via(even), [1, 2, 3, 4].map((v) => rec(v, v)));
    assert.deepEqual(asyncResult.output, [rec(2, 2), rec(4, 4)]);
  },
);

modeTest(
  "map() replaces values, keeps key/ts/headers, sees NaN and null, dead-letters throws",
  async (mode) => {
    const describe = map((v: N) =>
      v.n === null ? "null" : Number.isNaN(v.n) ? "nan" : v.n < 0
        ? (() => {
          throw new RangeError(`Cannot map: n is ${v.n}`);
        })()
        : v.n * 2
    );
    const input = [
      rec<N>({ n: 1 }, 1, "a", { file: "x.ndjson", line: "1" }),
      rec<N>({ n: NaN }, 2, "b"),
      rec<N>({ n: null }, 3),
      rec<N>({ n: -4 }, 4, "d"),
      rec<N>({ n: 21 }, 5, HUGE),
    ];
    assert.deepEqual((await run(mode, (f) => f.via(describe), [])).output, []);
    const result = await run(mode, (f) => f.via(describe), input);
    assert.deepEqual(result.output, [
      rec(2, 1, "a", { file: "x.ndjson", line: "1" }),
      rec("nan", 2, "b"),
      rec("null", 3),
      rec(42, 5, HUGE),
    ]);
    assert.deepEqual(dead(result), [{
      stage: "map",
      message: "Cannot map: n is -4",
      attempts: 3,
      record: rec({ n: -4 }, 4, "d"),
    }]);

    const slow = map(async (v: number) => await Promise.resolve(v + 0.5));
    assert.deepEqual((await run(mode, (f) => f.via(slow), [rec(1, 0, "k")])).output, [
      rec(1.5, 0, "k"),
    ]);
  },
);

modeTest(
  "flatMap() expands each record into 0..n copies; null drops; a non-iterable is dead-lettered",
  async (mode) => {
    const expand = flatMap((v: { n: number | null; s?: boolean }) =>
      v.s
        ? "abc" as unknown as number[]
        : v.n === null
        ? null!
        : Array.from({ length: v.n }, (_, i) => i * 10)
    );
    const input = [
      rec({ n: 2 }, 7, "a", { h: "1" }),
      rec({ n: 0 }, 8, "b"),
      rec({ n: null }, 9, "c"),
      wm(9),
      rec({ n: 1, s: true }, 10, "d"),
      rec({ n: 3 }, 11, HUGE),
    ];
    assert.deepEqual((await run(mode, (f) => f.via(expand), [])).output, []);
    const result = await run(mode, (f) => f.via(expand), input);
    assert.deepEqual(result.output, [
      rec(0, 7, "a", { h: "1" }),
      rec(10, 7, "a", { h: "1" }),
      rec(0, 11, HUGE),
      rec(10, 11, HUGE),
      rec(20, 11, HUGE),
    ]);
    assert.deepEqual(dead(result), [{
      stage: "flatMap",
      message: "Cannot flatMap record: fn returned string, not an iterable",
      attempts: 3,
      record: rec({ n: 1, s: true }, 10, "d"),
    }]);
  },
);

modeTest(
  "mapRecord() re-keys and re-times records, drops null, dead-letters a NaN ts or a number key",
  async (mode) => {
    type U = { user: string | number | null; n: number };
    const rekey = mapRecord((r: { value: U; ts: number; key?: string }) =>
      r.value.n === 0 ? null : r.value.n < 0 ? { value: r.value.n, ts: NaN } : {
        key: typeof r.value.user === "number"
          ? r.value.user as unknown as string
          : String(r.value.user),
        value: r.value.n,
        ts: r.ts + 1000,
      }
    );
    const input = [
      rec<U>({ user: "ann", n: 1 }, 0),
      rec<U>({ user: "bob", n: 0 }, 1),
      rec<U>({ user: null, n: 2 }, 2, "old"),
      rec<U>({ user: "x", n: -1 }, 3),
      rec<U>({ user: 7, n: 5 }, 4),
      rec<U>({ user: "k".repeat(100_000), n: 3 }, 5),
    ];
    assert.deepEqual((await run(mode, (f) => f.via(rekey), [])).output, []);
    const result = await run(mode, (f) => f.via(rekey), input);
    assert.deepEqual(result.output, [
      rec(1, 1000, "ann"),
      rec(2, 1002, "null"),
      rec(3, 1005, HUGE),
    ]);
    assert.deepEqual(dead(result), [
      {
        stage: "mapRecord",
        message: "Cannot map record: ts is NaN, not a finite number",
        attempts: 3,
        record: rec({ user: "x", n: -1 }, 3),
      },
      {
        stage: "mapRecord",
        message: "Cannot map record: key is number, not a string",
        attempts: 3,
        record: rec({ user: 7, n: 5 }, 4),
      },
    ]);
  },
);
