// KeyedState: partition bookkeeping behind checkpoints and rescaling.
import assert from "node:assert/strict";
import { KeyedState, partitionOf } from "../../mod.ts";

const P = 8;
/** Two keys in different partitions, and a third sharing the first one's. */
function keys(): [string, string, string] {
  const all = Array.from({ length: 200 }, (_, i) => `k${i}`);
  const a = all[0]!;
  const b = all.find((k) => partitionOf(k, P) !== partitionOf(a, P))!;
  const c = all.find((k) => k !== a && partitionOf(k, P) === partitionOf(a, P))!;
  return [a, b, c];
}

Deno.test("KeyedState marks a partition dirty on set, get and delete of a key it holds", () => {
  const [a, b] = keys();
  const s = new KeyedState<number[]>(P);
  s.set(a, [1]);
  s.set(b, [2]);
  assert.deepEqual(s.takeDirty().sort(), [partitionOf(a, P), partitionOf(b, P)].sort());
  assert.deepEqual(s.takeDirty(), [], "taking resets");
  // A value read may be changed in place: its partition goes into the next checkpoint.
  s.get(a)!.push(3);
  assert.deepEqual(s.takeDirty(), [partitionOf(a, P)]);
  assert.equal(s.get("absent"), undefined);
  assert.equal(s.delete("absent"), false);
  assert.deepEqual(s.takeDirty(), [], "absent keys change nothing");
  // A delete that empties the partition still marks it: the checkpoint must store it empty.
  assert.equal(s.delete(b), true);
  assert.deepEqual(s.takeDirty(), [partitionOf(b, P)]);
  assert.deepEqual(s.snapshot([partitionOf(b, P)]), [[partitionOf(b, P), []]]);
  assert.equal(s.size, 1);
  assert.equal(s.has(b), false);
});

Deno.test("KeyedState snapshot, drop and restore move whole partitions", () => {
  const [a, b, c] = keys();
  const s = new KeyedState<number>(P);
  s.set(a, 1).set(b, 2).set(c, 3);
  const pa = partitionOf(a, P);
  const moved = s.snapshot([pa]);
  assert.deepEqual(moved, [[pa, [[a, 1], [c, 3]]]]);
  s.drop([pa]);
  assert.deepEqual([s.has(a), s.has(c), s.has(b), s.size], [false, false, true, 1]);
  s.set(a, 10); // a fresh key after the drop goes back to its partition
  assert.deepEqual(s.snapshot([pa]), [[pa, [[a, 10]]]]);
  const t = new KeyedState<number>(P);
  t.restore(moved);
  t.set(c, t.get(c)! + 1);
  assert.deepEqual([t.get(a), t.get(c), t.size], [1, 4, 2]);
  assert.deepEqual(new Map(t.entries()), new Map([[a, 1], [c, 4]]));
  assert.deepEqual(t.snapshot(), [[pa, [[a, 1], [c, 4]]]]);
});

Deno.test("KeyedState.restore() moves a key held in another partition, leaving no stale copy", () => {
  // A snapshot taken under another partition count may put a key in a partition that is not its
  // hash here; the copy in its old partition must go, or a checkpoint would store it twice.
  const [a] = keys();
  const home = partitionOf(a, P);
  const other = (home + 1) % P;
  const state = new KeyedState<number>(P);
  state.set(a, 1);
  state.takeDirty();
  state.restore([[other, [[a, 5]]]]);
  assert.equal(state.get(a), 5);
  assert.equal(state.size, 1);
  const held = state.snapshot().flatMap(([p, entries]) => entries.map(([k]) => `${p}:${k}`));
  assert.deepEqual(held, [`${other}:${a}`]);
  assert.deepEqual(state.takeDirty().sort((x, y) => x - y), [home, other].sort((x, y) => x - y));
  assert.deepEqual(state.snapshot([home]), [[home, []]], "its old partition is stored empty");
});
