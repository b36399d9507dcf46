// Records keyed "" are keyed: they must not share state with records that have no key, and
// their output must keep the key "" (Kafka distinguishes an empty key from a null key).
// (Fixed bug: processors/_fields.ts groupKey() used to map "no key" to "", merging the groups.)
import assert from "node:assert/strict";
import { aggregate, batch, window } from "../../../mod.ts";
import { modeTest, rec, run, sorted } from "./_modes.ts";

const input = [rec({ v: 1 }, 0), rec({ v: 2 }, 1, ""), rec({ v: 4 }, 2, "")];

modeTest(
  'aggregate(), window() and batch({ perKey }) keep key "" apart from no key',
  async (mode) => {
    const agg = await run(mode, (f) => f.via(aggregate({ n: { op: "count" } })), input);
    assert.deepEqual(agg.output, [
      rec({ n: 1 }, 0),
      rec({ key: "", n: 1 }, 1, ""),
      rec({ key: "", n: 2 }, 2, ""),
    ]);

    const win = window({ type: "tumbling", sizeMs: 10, aggregate: { n: { op: "count" } } });
    const windows = await run(mode, (f) => f.via(win), input);
    assert.deepEqual(
      sorted(windows.output),
      sorted([
        rec({ windowStart: 0, windowEnd: 10, n: 1 }, 9),
        rec({ windowStart: 0, windowEnd: 10, key: "", n: 2 }, 9, ""),
      ]),
    );

    const batches = await run(mode, (f) => f.via(batch({ size: 5, perKey: true })), input);
    assert.deepEqual(
      sorted(batches.output),
      sorted([rec([{ v: 1 }], 0), rec([{ v: 2 }, { v: 4 }], 2, "")]),
    );
  },
);
