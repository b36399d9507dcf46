// A processor op runs the usual case of a batch in a synchronous loop and leaves it for a record
// whose process() returns a promise or throws; the output, its order, the retries and the dead
// letters must be those of one path taken record by record.
import assert from "node:assert/strict";
import { collect, fromArray, memoryDeadLetters, pipeline } from "../../mod.ts";
import { fixtureRef } from "./_fixture_ref.ts";

const ref = fixtureRef(new URL("./fixtures/process_paths_stages.ts", import.meta.url));

type Out = { id: number; sub?: number; calls: number };

/** What `mixed` gives for ids 0..count-1 with `maxRetries`, in order, and the ids it dead-letters. */
function expected(count: number, maxRetries: number) {
  const out: Out[] = [];
  const dead: [number, number, RegExp][] = [];
  for (let id = 0; id < count; id++) {
    if (id === 50) {
      for (let sub = 0; sub < 1100; sub++) out.push({ id, sub, calls: 1 });
      continue;
    }
    switch (id % 9) {
      case 2:
      case 4:
        out.push({ id, sub: 0, calls: 1 }, { id, sub: 1, calls: 1 });
        break;
      case 3:
      case 7:
        out.push({ id, calls: 2 });
        break;
      case 5:
        dead.push([id, maxRetries + 1, /always rejects/]);
        break;
      case 6:
        dead.push([id, maxRetries + 1, /emitted, then threw/]);
        break;
      case 8:
        if (id % 2 === 0) dead.push([id, maxRetries + 1, /process\(\) gave number, not a record/]);
        else out.push({ id, calls: 1 });
        break;
      default:
        out.push({ id, calls: 1 });
    }
  }
  return { out, dead };
}

for (const mode of ["inline", "workers"] as const) {
  for (const fuse of [true, false]) {
    Deno.test(`[${mode}${fuse ? ", fused" : ""}] every path of process() keeps order, retries and dead letters`, async () => {
      const count = 700;
      const maxRetries = 2;
      const input = Array.from({ length: count }, (_, id) => ({ value: { id }, ts: id }));
      const dead = memoryDeadLetters();
      const sink = collect<Out>();
      const summary = await pipeline({ mode, signals: false, deadLetter: dead })
        .from(fromArray(input), { fuse })
        .via(ref("mixed", {}), { maxRetries, fuse })
        .to(sink.sink, { fuse })
        .run();
      const want = expected(count, maxRetries);
      assert.deepEqual(await sink.values(), want.out);
      const got = dead.entries
        .map((e) => [(e.record.value as { id: number }).id, e.attempts, e.error.message] as const)
        .sort((a, b) => a[0] - b[0]);
      assert.equal(got.length, want.dead.length);
      for (let i = 0; i < got.length; i++) {
        const [id, attempts, message] = got[i]!;
        assert.equal(id, want.dead[i]![0]);
        assert.equal(attempts, want.dead[i]![1], `attempts of ${id}`);
        assert.match(message, want.dead[i]![2]);
        assert.equal(
          dead.entries.find((e) => (e.record.value as { id: number }).id === id)?.stage,
          "mixed",
        );
      }
      // Failed attempts: each dead letter's, and one each for the ids that throw once.
      const once = want.out.filter((o) => o.calls === 2).length;
      assert.equal(summary.stages.mixed?.failed, want.dead.length * (maxRetries + 1) + once);
      assert.equal(summary.stages.mixed?.deadLettered, want.dead.length);
      assert.equal(summary.stages.mixed?.out, want.out.length);
      await sink.clear();
    });
  }
}
