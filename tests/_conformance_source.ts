// The source cases of the connector conformance suite (registered by `sourceConformance` in
// _connector_conformance.ts): held without credit, then released; and killed by hand.
import assert from "node:assert/strict";
import type { SourceInstance } from "../actors/mod.ts";
import type { GateLine, SourceHarness } from "./_connector_conformance.ts";
import { gateSink } from "./_conformance_stages.ts";
import { hand, openStage } from "./_conformance_hand.ts";
import {
  type Mode,
  type PipelineSpec,
  runHere,
  runInChild,
  type Running,
  stageCounters,
  waitFor,
  watch,
} from "./_conformance_io.ts";
import { socketsTo } from "./_conformance_os.ts";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** The complete lines the gated sink has written so far (it may be writing the last one now). */
async function gateLines(dir: string): Promise<GateLine[]> {
  const text = await Deno.readTextFile(`${dir}/out.ndjson`).catch(() => "");
  const lines = text.split("\n");
  lines.pop(); // "" after the final newline, or a line still being written
  return lines.filter((l) => l.length > 0).map((l) => JSON.parse(l));
}

/** The numbers below `n` missing from `ids`. */
export function missingOf(ids: Iterable<number>, n: number): number[] {
  const got = new Set(ids);
  const missing: number[] = [];
  for (let i = 0; i < n; i++) if (!got.has(i)) missing.push(i);
  return missing;
}

/** Waits until the process holds no more sockets to `port` than `baseline`. */
export async function socketsBackTo(port: number | undefined, baseline: number): Promise<void> {
  if (port === undefined) return;
  await waitFor(
    () => socketsTo(port) <= baseline,
    5_000,
    () => `the sockets to port ${port} to close: ${socketsTo(port)} open, ${baseline} before`,
  );
}

/** Waits until the last stage before the sink has no credit and nothing moves for a while. */
async function stalled(
  running: Running,
  last: string,
  heartbeatMs: number,
  check: () => void,
): Promise<{ pulled: number; delivered: number }> {
  const quietMs = Math.max(600, heartbeatMs * 4);
  const deadline = Date.now() + 30_000;
  let prev = "";
  let since = Date.now();
  for (;;) {
    check();
    const counters = await running.counters();
    const src = stageCounters(counters, "src");
    const tail = stageCounters(counters, last);
    const now = `${src.out}/${tail.out}`;
    if (now !== prev || !tail.seen || tail.credits !== 0 || tail.out === 0) {
      prev = now;
      since = Date.now();
    } else if (Date.now() - since >= quietMs) return { pulled: src.out, delivered: tail.out };
    if (Date.now() > deadline) {
      throw new Error(
        `Timed out waiting for the source to run out of credit and stop: ${JSON.stringify(tail)}`,
      );
    }
    await sleep(heartbeatMs / 2);
  }
}

/**
 * The gate sink holds everything, so no credit comes back: the source stops within the channel
 * bound and the fixture's external checks; the gate opens and every record arrives.
 */
export async function heldAndReleased(h: SourceHarness, mode: Mode): Promise<void> {
  const n = h.records ?? 2000;
  const batchSize = h.batchSize ?? 50;
  const capacity = h.capacity ?? 2;
  const baseline = h.serverPort ? socketsTo(h.serverPort) : 0;
  const fx = await h.setup(mode, n);
  // A pull may put more than a batch into the channel (a file chunk decoded into lines).
  const bound = capacity * batchSize + batchSize + (fx.perPull ?? batchSize);
  const dir = await Deno.makeTempDir({ prefix: "sluice-conf-src-" });
  const via = fx.via ?? [];
  const last = via.length > 0 ? `via${via.length - 1}` : "src";
  const spec: PipelineSpec = {
    mode,
    heartbeatMs: mode === "workers" ? 200 : 100,
    stopTimeoutMs: 15_000,
    source: { ref: fx.source, options: { name: "src", batchSize } },
    via: via.map((ref, i) => ({ ref, options: { name: `via${i}`, batchSize } })),
    sink: { ref: gateSink(dir), options: { name: "gate", fuse: false, capacity } },
  };
  const abort = new AbortController();
  let running: Running | undefined;
  let producing: Promise<void> | undefined;
  let produceError: unknown;
  try {
    await fx.prepare?.(n);
    running = h.child ? await runInChild(spec, h.child) : runHere(spec);
    const failed = watch(running);
    producing = fx.produce?.(n, running.io ?? {}, abort.signal).catch((e) => {
      if (!abort.signal.aborted) produceError = e;
    });
    let released = false;
    const check = () => {
      if (produceError) throw produceError;
      failed(released && fx.ends);
    };
    // 1. No credit: the source stops, with no more in the channel than it can hold.
    const held = await stalled(running, last, spec.heartbeatMs, check);
    assert.ok(
      held.delivered <= bound,
      `${held.delivered} records went into a channel without credit, over its bound: capacity ` +
        `${capacity} × batchSize ${batchSize} + one batch waiting + one pull (${
          fx.perPull ?? batchSize
        })`,
    );
    assert.ok(held.delivered < n, "the source read everything although nothing was taken");
    assert.equal((await gateLines(dir)).length, 0, "nothing may pass the closed gate");
    await fx.held?.({ ...held, bound, records: n });
    const after = await running.counters();
    assert.equal(stageCounters(after, "src").out, held.pulled, "the source stays stopped");
    assert.equal(stageCounters(after, last).out, held.delivered, "the channel stays bounded");
    // 2. Released: every record arrives.
    released = true;
    await Deno.writeTextFile(`${dir}/gate`, "");
    await waitFor(
      async () => {
        check();
        return missingOf((await gateLines(dir)).map(fx.idOf), n).length === 0;
      },
      30_000,
      () => `all ${n} records after the gate opened`,
      50,
    );
    await producing;
    if (produceError) throw produceError;
    if (!fx.ends) await running.stop();
    await running.done;
    assert.deepEqual(missingOf((await gateLines(dir)).map(fx.idOf), n), [], "every record");
    assert.equal(await running.deadLettered(), 0, "nothing is dead-lettered");
    await fx.drained?.(n);
  } finally {
    abort.abort();
    await Deno.writeTextFile(`${dir}/gate`, "").catch(() => {});
    if (running) {
      await running.stop();
      await running.done.catch(() => {});
    }
    await producing;
    await fx.cleanup();
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
  await socketsBackTo(h.serverPort, baseline);
}

/**
 * The source is opened and pulled by hand, then killed the way the runtime kills a stage (its
 * signal aborts, `close` is never called): it must release its clients all the same.
 */
export async function killed(h: SourceHarness): Promise<void> {
  const n = h.records ?? 2000;
  const baseline = h.serverPort ? socketsTo(h.serverPort) : 0;
  const fx = await h.setup("inline", n);
  const stage = hand("src");
  const abort = new AbortController();
  let producing: Promise<void> | undefined;
  try {
    await fx.prepare?.(n);
    const source = await openStage(fx.source, stage.ctx) as SourceInstance<unknown>;
    producing = fx.produce?.(n, {}, abort.signal).catch(() => {});
    let got = 0;
    await waitFor(
      async () => {
        const batch = await source.pull({ max: 10, signal: stage.pullSignal }, stage.ctx as never);
        got += batch?.records.length ?? 0;
        return got > 0;
      },
      20_000,
      () => "a first record",
    );
    stage.kill();
    await fx.killed?.();
  } finally {
    stage.kill();
    abort.abort();
    await producing;
    await fx.cleanup();
  }
  await socketsBackTo(h.serverPort, baseline);
  await sleep(300); // what the kill started (closing, disconnecting) ends before the sanitizers look
}
