// Keyed state of the processors: a record without a key and a record keyed "" have separate state
// (Kafka tells a null key from an empty one), and every state entry sits in the partition the
// runtime routes its records to (partitionOf(record.key ?? "")), so rescaling moves it with them.
import assert from "node:assert/strict";
import type { StreamRecord } from "../../../actors/record.ts";
import type { StageRef } from "../../../actors/stage_ref.ts";
import { assignPartitions, partitionOf } from "../../../actors/partitioner.ts";
import { groupKey, keyOfGroup } from "../../../processors/_fields.ts";
import { aggregate } from "../../../processors/aggregate.ts";
import { batch } from "../../../processors/batch.ts";
import { dedupe } from "../../../processors/dedupe.ts";
import { window } from "../../../processors/window.ts";
import { type Harness, harness, type HarnessSnapshot, rec } from "./_harness.ts";

const KEYS = [
  undefined,
  "",
  "a",
  "sku-1",
  " ",
  "key:",
  "absent:nMydDE",
  "ключ",
  "🔑",
  "\ud800",
  "k".repeat(100_000),
];
const PARTITION_COUNTS = [1, 2, 3, 7, 64, 100, 1024, 65_537, 2 ** 31 - 1];

Deno.test('groupKey() tells no key from the key "" and from every other key', () => {
  const groups = KEYS.map((key) => groupKey(key === undefined ? rec(1) : rec(1, 0, key)));
  assert.equal(new Set(groups).size, KEYS.length);
  assert.deepEqual(groups.map(keyOfGroup), KEYS);
});

Deno.test("groupKey() puts state in the partition the runtime routes the record to", () => {
  for (const key of KEYS) {
    const group = groupKey(key === undefined ? rec(1) : rec(1, 0, key));
    for (const partitions of PARTITION_COUNTS) {
      assert.equal(partitionOf(group, partitions), partitionOf(key ?? "", partitions), `${key}`);
    }
  }
});

Deno.test("groupKey() orders records without a key first, then keys in their order", () => {
  const keys = ["b", "", "a", "ab"];
  const groups = [...keys.map((k) => groupKey(rec(1, 0, k))), groupKey(rec(1))].sort();
  assert.deepEqual(groups.map(keyOfGroup), [undefined, "", "a", "ab", "b"]);
});

Deno.test("keyOfGroup() reads a state key of an older checkpoint (the bare key) as that key", () => {
  assert.equal(keyOfGroup("sku-1"), "sku-1");
  assert.equal(keyOfGroup(""), undefined);
});

const mixed = [rec({ v: 1 }, 0), rec({ v: 2 }, 1, ""), rec({ v: 4 }, 2, "")];

Deno.test('aggregate() keeps key "" apart from no key', async () => {
  const h = await harness(aggregate({ n: { op: "count" } }));
  assert.deepEqual(await h.push(mixed), [
    { value: { n: 1 }, ts: 0 },
    { key: "", value: { key: "", n: 1 }, ts: 1 },
    { key: "", value: { key: "", n: 2 }, ts: 2 },
  ]);
});

Deno.test('window() keeps key "" apart from no key and fires no key first', async () => {
  const h = await harness(
    window({ type: "tumbling", sizeMs: 10, aggregate: { n: { op: "count" } } }),
  );
  await h.push([rec({ v: 3 }, 3, "b"), ...mixed]);
  assert.deepEqual(await h.advanceWatermark(10), [
    { value: { windowStart: 0, windowEnd: 10, n: 1 }, ts: 9 },
    { key: "", value: { windowStart: 0, windowEnd: 10, key: "", n: 2 }, ts: 9 },
    { key: "b", value: { windowStart: 0, windowEnd: 10, key: "b", n: 1 }, ts: 9 },
  ]);
});

Deno.test('batch({ perKey }) keeps key "" apart from no key', async () => {
  const h = await harness(batch({ size: 2, perKey: true }));
  assert.deepEqual(await h.push(mixed), [{ key: "", value: [{ v: 2 }, { v: 4 }], ts: 2 }]);
  assert.deepEqual(await h.flush(), [{ value: [{ v: 1 }], ts: 0 }]);
});

Deno.test('dedupe() keeps key "" apart from no key', async () => {
  const byField = await harness(dedupe({ by: { field: "id" }, ttlMs: 100 }));
  const out = await byField.push([rec({ id: 1 }, 0), rec({ id: 1 }, 1, ""), rec({ id: 1 }, 2, "")]);
  assert.deepEqual(out.map((r) => r.key), [undefined, ""]);
  const byKey = await harness(dedupe({ ttlMs: 100 }));
  const keys = await byKey.push([rec(1, 0, ""), rec(2, 1, ""), rec(3, 2), rec(4, 3)]);
  assert.deepEqual(keys.map((r) => r.value), [1, 3, 4]);
});

/** Every keyed-state entry of a snapshot: [state name, partition, record key]. */
function entries(snapshot: HarnessSnapshot): [string, number, string | undefined][] {
  return snapshot.keyed.flatMap(([name, parts]) =>
    parts.flatMap(([p, list]) =>
      list.map(([k]) => [name, p, keyOfGroup(k)] as [string, number, string | undefined])
    )
  );
}

/** The part of a snapshot holding the given partitions, as the runtime moves it on rescale. */
function only(snapshot: HarnessSnapshot, owned: Set<number>): HarnessSnapshot {
  const keyed = snapshot.keyed.map(([name, parts]) =>
    [name, parts.filter(([p]) => owned.has(p))] as HarnessSnapshot["keyed"][number]
  );
  return { keyed, extra: snapshot.extra };
}

const stateful: [string, () => StageRef<unknown, unknown>][] = [
  ["aggregate()", () => aggregate({ n: { op: "count" }, sum: { op: "sum", field: "v" } })],
  ["window()", () => window({ type: "tumbling", sizeMs: 100, aggregate: { n: { op: "count" } } })],
  ["batch({ perKey })", () => batch({ size: 4, perKey: true })],
  ["dedupe()", () => dedupe({ by: { field: "v" }, ttlMs: 1000 })],
];

Deno.test("stateful processors keep state in the routing partition and rescale 1 → 3 losslessly", async () => {
  const partitions = 8;
  const keys = [undefined, "", "a", "b", "c", "d", "é", "x".repeat(1000)];
  const input = (from: number): StreamRecord<{ v: number }>[] =>
    Array.from({ length: 24 }, (_, i) => {
      const key = keys[i % keys.length];
      return key === undefined ? rec({ v: i % 5 }, from + i) : rec({ v: i % 5 }, from + i, key);
    });
  const owners = assignPartitions(partitions, 3);
  for (const [name, ref] of stateful) {
    const one = await harness(ref(), { partitions });
    await one.push(input(0));
    const snapshot = one.snapshot();
    const held = entries(snapshot);
    assert.ok(held.length >= keys.length, `${name} holds state for every key`);
    for (const [, p, key] of held) assert.equal(p, partitionOf(key ?? "", partitions), name);

    // Three instances, each restored with the partitions it owns; records routed by key.
    const three: Harness[] = [];
    for (let i = 0; i < 3; i++) {
      const owned = new Set(owners.flatMap((o, p) => (o === i ? [p] : [])));
      three.push(await harness(ref(), { partitions, restore: only(snapshot, owned) }));
    }
    const more = input(50);
    const expected = [...await one.push(more), ...await one.flush()];
    const got: StreamRecord<unknown>[] = [];
    for (const r of more) {
      got.push(...await three[owners[partitionOf(r.key ?? "", partitions)]!]!.push([r]));
    }
    for (const h of three) got.push(...await h.flush());
    const order = (rs: StreamRecord<unknown>[]) => rs.map((r) => JSON.stringify(r)).sort();
    assert.deepEqual(order(got), order(expected), name);
  }
});
