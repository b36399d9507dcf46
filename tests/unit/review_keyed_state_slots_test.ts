// Review of 63855cb (KeyedState: one lookup per access, each key's slot holds its state and shard).
// A model of partition → key → value, driven by random get/set/delete/snapshot/drop/restore, must
// agree with KeyedState after every step: the `#home` slot map and the shards never disagree.
import assert from "node:assert/strict";
import { KeyedState, partitionOf } from "../../mod.ts";

const P = 8;

function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = Math.imul(s ^ (s >>> 15), 1 | s);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

type Model = Map<number, Map<string, number>>;

function check(s: KeyedState<number>, model: Model, keys: string[], step: string): void {
  let size = 0;
  for (const m of model.values()) size += m.size;
  assert.equal(s.size, size, `${step}: size`);
  for (const k of keys) {
    const v = model.get(partitionOf(k, P))?.get(k);
    assert.equal(s.has(k), v !== undefined, `${step}: has(${k})`);
  }
  const entries = [...s.entries()].sort(([a], [b]) => a < b ? -1 : 1);
  const expected = [...model.values()].flatMap((m) => [...m]).sort(([a], [b]) => a < b ? -1 : 1);
  assert.deepEqual(entries, expected, `${step}: entries`);
  const snap = s.snapshot().map(([p, e]) => [p, e.sort(([a], [b]) => a < b ? -1 : 1)] as const);
  const modelSnap = [...model].filter(([, m]) => m.size > 0)
    .map(([p, m]) => [p, [...m].sort(([a], [b]) => a < b ? -1 : 1)] as const);
  assert.deepEqual(
    snap.sort(([a], [b]) => a - b),
    modelSnap.sort(([a], [b]) => a - b),
    `${step}: snapshot`,
  );
}

Deno.test("KeyedState get/set/delete/drop/restore agree with a partition model after every step", () => {
  const keys = Array.from({ length: 40 }, (_, i) => `key-${i}`);
  for (let seed = 1; seed <= 30; seed++) {
    const random = rng(seed);
    const s = new KeyedState<number>(P);
    const model: Model = new Map();
    const part = (p: number) => {
      let m = model.get(p);
      if (!m) model.set(p, m = new Map());
      return m;
    };
    // Partitions given away (snapshot + drop), to be restored later, as a rescale does.
    const away: [number, [string, number][]][][] = [];
    for (let step = 0; step < 300; step++) {
      const what = random();
      const k = keys[Math.floor(random() * keys.length)]!;
      const p = partitionOf(k, P);
      const at = `seed ${seed} step ${step}`;
      if (what < 0.35) {
        const v = Math.floor(random() * 1000);
        s.set(k, v);
        part(p).set(k, v);
      } else if (what < 0.55) {
        assert.equal(s.get(k), model.get(p)?.get(k), `${at}: get(${k})`);
      } else if (what < 0.7) {
        assert.equal(s.delete(k), model.get(p)?.delete(k) ?? false, `${at}: delete(${k})`);
      } else if (what < 0.8) {
        const ps = [p, (p + 3) % P];
        const snap = s.snapshot(ps);
        s.drop(ps);
        for (const q of ps) model.delete(q);
        away.push(snap);
      } else if (what < 0.9 && away.length > 0) {
        const snap = away.splice(Math.floor(random() * away.length), 1)[0]!;
        s.restore(snap);
        for (const [q, entries] of snap) for (const [key, v] of entries) part(q).set(key, v);
      } else {
        // A restore of a partition's own stored copy over what it holds now (a restart).
        const snap = s.snapshot([p]);
        s.set(k, -1);
        s.restore(snap);
        part(p).set(k, -1);
        for (const [key, v] of snap[0]![1]) part(p).set(key, v);
      }
      check(s, model, keys, at);
    }
  }
});
