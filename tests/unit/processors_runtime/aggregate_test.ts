// aggregate() with every op (count, sum, avg, min, max, distinctCount, topK, reduce) through the
// runtime in inline and workers modes: one changelog entry per input record.
import assert from "node:assert/strict";
import { aggregate, type StreamRecord } from "../../../mod.ts";
import { byKey, dead, hugeKey, modeTest, rec, run, wm } from "./_modes.ts";

const HUGE = hugeKey();
type Sale = { sku?: string | null; price?: number | null; qty?: number; user?: string | null };

const every = () =>
  aggregate({
    n: { op: "count" },
    priced: { op: "count", field: "price" },
    revenue: { op: "sum", field: "price" },
    avgPrice: { op: "avg", field: "price" },
    lo: { op: "min", field: "price" },
    hi: { op: "max", field: "price" },
    users: { op: "distinctCount", field: "user" },
    top: { op: "topK", field: "sku", k: 2 },
    topByQty: { op: "topK", field: "sku", k: 1, weight: "qty" },
    skus: {
      op: "reduce",
      field: "sku",
      fn: (acc: string, sku: unknown) => (typeof sku === "string" ? acc + sku : acc),
      initial: "",
    },
    qtySum: {
      op: "reduce",
      fn: (acc: number, v: Sale) =>
        acc + (typeof v.qty === "number" && Number.isFinite(v.qty) ? v.qty : 0),
      initial: 0,
    },
  });

type Results = {
  n: number;
  priced: number;
  revenue: number;
  avgPrice: number | null;
  lo: number | null;
  hi: number | null;
  users: number;
  top: { value: unknown; count: number }[];
  topByQty: { value: unknown; count: number }[];
  skus: string;
  qtySum: number;
};
const change = (key: string | undefined, ts: number, r: Results) =>
  key === undefined ? rec(r, ts) : rec({ key, ...r }, ts, key);

modeTest(
  "aggregate() emits every op's running result per record; NaN, Infinity and null are skipped",
  async (mode) => {
    const empty = await run(mode, (f) => f.via(every()), []);
    assert.deepEqual([empty.output, empty.deadLetters], [[], []]);

    const input = [
      rec<Sale>({ sku: "x", price: 10, qty: 1, user: "u1" }, 1, "a", { offset: "1" }),
      rec<Sale>({ sku: "y", price: NaN, qty: 2, user: "u2" }, 2, "a"),
      wm(2),
      rec<Sale>({ sku: "x", price: null, qty: 3, user: "u1" }, 3, "a"),
      rec<Sale>({ sku: null, price: 5, qty: 1, user: null }, 4, "b"),
      rec<Sale>({ sku: "y", price: 4, qty: 4, user: "u3" }, 5, "a"),
      rec<Sale>({ sku: "z", price: 1, qty: 1, user: "u9" }, 6, HUGE),
      rec<Sale>({ sku: "x", price: 2, qty: 1 }, 7),
      rec<Sale>({ sku: "x", price: Infinity, qty: NaN, user: "u1" }, 8, "c"),
    ];
    const x = (count: number) => ({ value: "x", count });
    const y = (count: number) => ({ value: "y", count });
    const result = await run(mode, (f) => f.via(every()), input);
    assert.deepEqual(result.output, [
      change("a", 1, {
        n: 1,
        priced: 1,
        revenue: 10,
        avgPrice: 10,
        lo: 10,
        hi: 10,
        users: 1,
        top: [x(1)],
        topByQty: [x(1)],
        skus: "x",
        qtySum: 1,
      }),
      change("a", 2, {
        n: 2,
        priced: 2,
        revenue: 10,
        avgPrice: 10,
        lo: 10,
        hi: 10,
        users: 2,
        top: [x(1), y(1)],
        topByQty: [y(2)],
        skus: "xy",
        qtySum: 3,
      }),
      change("a", 3, {
        n: 3,
        priced: 2,
        revenue: 10,
        avgPrice: 10,
        lo: 10,
        hi: 10,
        users: 2,
        top: [x(2), y(1)],
        topByQty: [x(4)],
        skus: "xyx",
        qtySum: 6,
      }),
      change("b", 4, {
        n: 1,
        priced: 1,
        revenue: 5,
        avgPrice: 5,
        lo: 5,
        hi: 5,
        users: 0,
        top: [],
        topByQty: [],
        skus: "",
        qtySum: 1,
      }),
      change("a", 5, {
        n: 4,
        priced: 3,
        revenue: 14,
        avgPrice: 7,
        lo: 4,
        hi: 10,
        users: 3,
        top: [x(2), y(2)],
        topByQty: [y(6)],
        skus: "xyxy",
        qtySum: 10,
      }),
      change(HUGE, 6, {
        n: 1,
        priced: 1,
        revenue: 1,
        avgPrice: 1,
        lo: 1,
        hi: 1,
        users: 1,
        top: [{ value: "z", count: 1 }],
        topByQty: [{ value: "z", count: 1 }],
        skus: "z",
        qtySum: 1,
      }),
      change(undefined, 7, {
        n: 1,
        priced: 1,
        revenue: 2,
        avgPrice: 2,
        lo: 2,
        hi: 2,
        users: 0,
        top: [x(1)],
        topByQty: [x(1)],
        skus: "x",
        qtySum: 1,
      }),
      change("c", 8, {
        n: 1,
        priced: 1,
        revenue: 0,
        avgPrice: null,
        lo: null,
        hi: null,
        users: 1,
        top: [x(1)],
        topByQty: [],
        skus: "x",
        qtySum: 0,
      }),
    ]);
    assert.deepEqual(result.deadLetters, []);
  },
);

modeTest(
  "aggregate() dead-letters a record whose reducer throws and leaves every aggregate unchanged",
  async (mode) => {
    const agg = aggregate({
      n: { op: "count" },
      total: { op: "sum", field: "qty" },
      q: {
        op: "reduce",
        fn: (acc: number, v: { qty: number }) => {
          if (v.qty < 0) throw new RangeError(`Cannot reduce: qty is ${v.qty}`);
          return acc + v.qty;
        },
        initial: 0,
      },
    });
    const input = [rec({ qty: 1 }, 1, "a"), rec({ qty: -5 }, 2, "a"), rec({ qty: 2 }, 3, "a")];
    const result = await run(mode, (f) => f.via(agg), input);
    assert.deepEqual(result.output, [
      rec({ key: "a", n: 1, total: 1, q: 1 }, 1, "a"),
      rec({ key: "a", n: 2, total: 3, q: 3 }, 3, "a"),
    ]);
    assert.deepEqual(dead(result), [{
      stage: "aggregate",
      message: "Cannot reduce: qty is -5",
      attempts: 3,
      record: rec({ qty: -5 }, 2, "a"),
    }]);
  },
);

modeTest(
  "aggregate() at parallelism 2 after keyBy gives each key the same changelog as parallelism 1",
  async (mode) => {
    const input = Array.from({ length: 60 }, (_, i) => rec({ v: i }, i, `k${(i * 7) % 11}`));
    // Expected per key: running count and sum, in input order.
    const expected: Record<string, StreamRecord<unknown>[]> = {};
    const acc: Record<string, [number, number]> = {};
    for (const r of input) {
      const a = acc[r.key!] ??= [0, 0];
      a[0]++;
      a[1] += r.value.v;
      (expected[r.key!] ??= []).push(rec({ key: r.key, n: a[0], sum: a[1] }, r.ts, r.key));
    }
    const agg = () => aggregate({ n: { op: "count" }, sum: { op: "sum", field: "v" } });
    for (const parallelism of [1, 2]) {
      const result = await run(mode, (f) => f.keyBy().via(agg(), { parallelism }), input, {
        defaults: { batchSize: 8 },
      });
      assert.deepEqual(byKey(result.output), expected, `parallelism ${parallelism}`);
      assert.equal(result.output.length, 60);
    }
  },
);
