// Stages of the connector conformance suite, importable by a worker: a sink held shut by a gate
// file (to take every credit away from a source under test) and a probe source that emits
// numbered records when allowed and hands each `ack(position)` to the test through files, waiting
// for the test to check the sink's server before the ack returns. Files work across threads and
// processes alike, so the same stages serve inline, workers and child-process runs.
import { z } from "../actors/_deps.ts";
import {
  defineSink,
  defineSource,
  type SinkDefinition,
  type SourceDefinition,
  type StageRef,
  type StreamRecord,
} from "../actors/mod.ts";

/** What a probe record carries: its number and a little padding (with a non-ASCII letter). */
export interface ProbeValue {
  i: number;
  pad: string;
}

interface GateConfig {
  gate: string;
  out: string;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const exists = (path: string) => Deno.stat(path).then(() => true, () => false);

/**
 * Holds every write until the `gate` file exists, then appends one JSON line per record
 * (`{ k, v }`: the key and the value, strings cut to 64 characters) to `out`.
 */
export const conformanceGateSink: SinkDefinition<unknown, GateConfig> = defineSink({
  name: "conformance-gate",
  config: z.object({ gate: z.string(), out: z.string() }).strict(),
  open({ gate, out }, ctx) {
    return {
      async write(records: StreamRecord<unknown>[]) {
        while (!(await exists(gate))) {
          if (ctx.signal.aborted) throw new Error("Cannot write: the gate sink was stopped");
          await sleep(10);
        }
        const lines = records.map((r) =>
          JSON.stringify({
            k: r.key,
            v: typeof r.value === "string" ? r.value.slice(0, 64) : r.value,
          })
        );
        await Deno.writeTextFile(out, lines.join("\n") + "\n", { append: true });
      },
    };
  },
});

/** A gate sink writing into `dir` (`dir/gate` opens it, `dir/out.ndjson` holds what passed). */
export function gateSink(dir: string): StageRef<unknown, never> {
  return {
    kind: "sink",
    module: import.meta.url,
    export: "conformanceGateSink",
    config: { gate: `${dir}/gate`, out: `${dir}/out.ndjson` },
    options: { permissions: { read: [dir], write: [dir] } },
  };
}

interface ProbeConfig {
  dir: string;
  count: number;
  padBytes: number;
}

/** Reads the number of records the test allows so far (`dir/allow`; 0 when absent). */
async function allowed(dir: string): Promise<number> {
  const text = await Deno.readTextFile(`${dir}/allow`).catch(() => "0");
  return Number(text) || 0;
}

/**
 * Emits records `{ key: "r<i>", value: { i, pad }, ts }` for `i < count`, no more than `dir/allow`
 * says, one pull at most `max`; the position of a pull is the number of records emitted up to its
 * end. `ack(position)` writes `dir/ack-<position>` and returns only once `dir/ok-<position>`
 * (the test checked the server) or `dir/done` exists.
 */
export const conformanceProbeSource: SourceDefinition<ProbeValue, ProbeConfig> = defineSource({
  name: "conformance-probe",
  config: z.object({
    dir: z.string(),
    count: z.number().int().min(0),
    padBytes: z.number().int().min(0),
  }).strict(),
  open({ dir, count, padBytes }) {
    let next = 0;
    const pad = "é" + "x".repeat(Math.max(0, padBytes - 2));
    return {
      async pull({ max }) {
        if (next >= count) return null;
        const upTo = Math.min(count, await allowed(dir), next + max);
        if (upTo <= next) {
          await sleep(5);
          return { records: [] };
        }
        const records: StreamRecord<ProbeValue>[] = [];
        for (; next < upTo; next++) {
          records.push({ key: `r${next}`, value: { i: next, pad }, ts: 1_700_000_000_000 + next });
        }
        return { records, position: next };
      },
      async ack(position) {
        await Deno.writeTextFile(`${dir}/ack-${position}`, "");
        const deadline = Date.now() + 60_000;
        while (!(await exists(`${dir}/ok-${position}`)) && !(await exists(`${dir}/done`))) {
          if (Date.now() > deadline) {
            throw new Error(`Cannot ack position ${position}: the test never checked it`);
          }
          await sleep(2);
        }
      },
    };
  },
});

/** A probe source controlled through files in `dir` (see {@linkcode conformanceProbeSource}). */
export function probeSource(
  dir: string,
  count: number,
  padBytes = 16,
): StageRef<never, ProbeValue> {
  return {
    kind: "source",
    module: import.meta.url,
    export: "conformanceProbeSource",
    config: { dir, count, padBytes },
    options: { permissions: { read: [dir], write: [dir] } },
  };
}
