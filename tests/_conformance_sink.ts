// The sink cases of the connector conformance suite (registered by `sinkConformance` in
// _connector_conformance.ts): acks checked against the server, a held server, an unreachable
// server, and a sink killed by hand.
import assert from "node:assert/strict";
import type { SinkInstance, StreamRecord } from "../actors/mod.ts";
import type { SinkHarness } from "./_connector_conformance.ts";
import { probeSource, type ProbeValue } from "./_conformance_stages.ts";
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
  within,
} from "./_conformance_io.ts";
import { freePort, socketsTo } from "./_conformance_os.ts";
import { missingOf, socketsBackTo } from "./_conformance_source.ts";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const allow = (dir: string, n: number) => Deno.writeTextFile(`${dir}/allow`, String(n));

/**
 * Answers the probe source's acks (files `ack-<position>` in its directory): reads the server at
 * each one, notes a violation when records up to it are missing, then lets the ack return.
 */
class AckWatcher {
  readonly #dir: string;
  readonly #readIds: () => Promise<number[]>;
  readonly #seen = new Set<number>();
  readonly #loop: Promise<void>;
  #stopped = false;
  /** Highest position acked. */
  last = 0;
  /** What went wrong at an ack. */
  readonly violations: string[] = [];
  /** Records an ack may run ahead of what is readable (a held sink's pipe buffer). */
  slack = 0;

  constructor(dir: string, readIds: () => Promise<number[]>) {
    this.#dir = dir;
    this.#readIds = readIds;
    this.#loop = this.#run();
  }

  async #run(): Promise<void> {
    while (!this.#stopped) {
      const acks: number[] = [];
      for await (const entry of Deno.readDir(this.#dir)) {
        const m = /^ack-(\d+)$/.exec(entry.name);
        if (m && !this.#seen.has(Number(m[1]))) acks.push(Number(m[1]));
      }
      for (const pos of acks.sort((a, b) => a - b)) {
        this.#seen.add(pos);
        try {
          const missing = missingOf(await this.#readIds(), pos);
          if (missing.length > this.slack) {
            this.violations.push(
              `position ${pos} was acked while ${missing.length} records up to it were not ` +
                `readable on the server (the first: ${missing[0]})`,
            );
          }
        } catch (error) {
          this.violations.push(`the server could not be read at ack ${pos}: ${error}`);
        }
        if (pos <= this.last) this.violations.push(`position ${pos} acked after ${this.last}`);
        this.last = Math.max(this.last, pos);
        await Deno.writeTextFile(`${this.#dir}/ok-${pos}`, "");
      }
      await sleep(5);
    }
  }

  /** Waits until `pos` was acked (and checked). */
  async until(pos: number, ms: number, check: () => void): Promise<void> {
    await waitFor(
      () => {
        check();
        return this.last >= pos;
      },
      ms,
      () => `the ack of position ${pos} (last: ${this.last})`,
    );
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    await this.#loop;
  }
}

/**
 * A probe source feeds the sink; at each ack the records up to it must be readable on the server;
 * with the server held, no ack may run ahead of it; at the end every record is there.
 */
export async function acksWhenDurable(h: SinkHarness, mode: Mode): Promise<void> {
  const n = h.records ?? 500;
  const batchSize = h.batchSize ?? 50;
  const baseline = h.serverPort ? socketsTo(h.serverPort) : 0;
  const dir = await Deno.makeTempDir({ prefix: "sluice-conf-sink-" });
  const fx = await h.setup(mode);
  const watcher = new AckWatcher(dir, () => fx.readIds());
  const spec: PipelineSpec = {
    mode,
    heartbeatMs: mode === "workers" ? 200 : 100,
    stopTimeoutMs: 15_000,
    source: { ref: probeSource(dir, n, h.padBytes), options: { name: "probe", batchSize } },
    via: [],
    sink: { ref: fx.sink, options: { name: "sink", fuse: false } },
  };
  let running: Running | undefined;
  let held = false;
  try {
    running = h.child ? await runInChild(spec, h.child) : runHere(spec);
    const failed = watch(running);
    if (running.io) fx.attach?.(running.io);
    // 1. One batch: at its ack, its records are on the server.
    await allow(dir, batchSize);
    await watcher.until(batchSize, 30_000, failed);
    // 2. The server holds everything back: no ack may run ahead of what it has.
    if (fx.hold) {
      watcher.slack = fx.holdSlack ?? 0;
      await fx.hold();
      held = true;
      await allow(dir, n);
      await sleep(800);
      failed(true); // a run that ended here acked everything: said below
      const acked = watcher.last;
      const readable = n - missingOf(await fx.readIds(), n).length;
      assert.ok(acked < n, `all ${n} records were acked while the server was held`);
      assert.ok(
        acked <= readable + watcher.slack,
        `${acked} records were acked while the server was held and ${readable} were readable`,
      );
      held = false;
      await fx.release?.();
      watcher.slack = 0;
    }
    // 3. The rest: each ack is checked; the source ends once everything is acked.
    await allow(dir, n);
    await within(running.done, 60_000, () => `the end of the run (last ack ${watcher.last})`);
    await watcher.stop();
    assert.deepEqual(watcher.violations, []);
    assert.equal(watcher.last, n, "the last position acked is the end");
    assert.deepEqual(missingOf(await fx.readIds(), n), [], "every record is on the server");
    assert.equal(await running.deadLettered(), 0, "nothing is dead-lettered");
    if (fx.connections) {
      await waitFor(() => fx.connections!() === 0, 5_000, () => `${fx.connections!()} connections`);
    }
  } finally {
    await Deno.writeTextFile(`${dir}/done`, "").catch(() => {});
    if (held) await fx.release?.();
    if (running) {
      await running.stop();
      await running.done.catch(() => {});
    }
    await watcher.stop();
    await fx.cleanup();
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
  await socketsBackTo(h.serverPort, baseline);
}

/**
 * The sink writes where nothing listens: its writes fail as retriable, so nothing is acked nor
 * dead-lettered, however often the runtime retries; the stop is bounded by `stopTimeoutMs`.
 */
export async function unreachable(h: SinkHarness, mode: Mode): Promise<void> {
  const batchSize = h.batchSize ?? 50;
  const dir = await Deno.makeTempDir({ prefix: "sluice-conf-down-" });
  await allow(dir, 2 * batchSize);
  const stopTimeoutMs = 1_000;
  const running = runHere({
    mode,
    heartbeatMs: 100,
    stopTimeoutMs,
    source: { ref: probeSource(dir, 10 * batchSize), options: { name: "probe", batchSize } },
    via: [],
    sink: {
      ref: h.unreachable!(freePort()),
      options: { name: "sink", fuse: false, maxRetries: 1 },
    },
  });
  const acks = async () => {
    const names: string[] = [];
    for await (const e of Deno.readDir(dir)) if (e.name.startsWith("ack-")) names.push(e.name);
    return names;
  };
  try {
    const failed = watch(running);
    // More failed attempts than maxRetries + 1: a plain error would have been dead-lettered.
    await waitFor(
      async () => {
        failed();
        const sink = stageCounters(await running.counters(), "sink");
        assert.equal(sink.deadLettered, 0, "a write to an unreachable server was dead-lettered");
        assert.deepEqual(await acks(), [], "records were acked while the server was unreachable");
        return sink.failed >= 4;
      },
      30_000,
      () => "four failed attempts of the sink",
    );
    assert.equal(stageCounters(await running.counters(), "sink").out, 0, "nothing was written");
  } finally {
    const stopping = Date.now();
    await running.stop();
    await running.done.catch(() => {}); // forced: the sink never drains
    const took = Date.now() - stopping;
    const left = await acks();
    await Deno.writeTextFile(`${dir}/done`, "");
    await Deno.remove(dir, { recursive: true });
    assert.deepEqual(left, [], "records were acked (or dead-lettered) by the time of the stop");
    assert.ok(took < stopTimeoutMs + 3_000, `the stop took ${took} ms`);
  }
}

function probeRecords(from: number, to: number): StreamRecord<ProbeValue>[] {
  const records: StreamRecord<ProbeValue>[] = [];
  for (let i = from; i < to; i++) {
    records.push({ key: `r${i}`, value: { i, pad: "é-pad" }, ts: 1_700_000_000_000 + i });
  }
  return records;
}

/**
 * The sink is opened by hand, writes (to its server, then where nothing listens) and is killed
 * the way the runtime kills a stage (its signal aborts, `close` is never called): it must release
 * its clients all the same.
 */
export async function killed(h: SinkHarness): Promise<void> {
  const baseline = h.serverPort ? socketsTo(h.serverPort) : 0;
  const fx = await h.setup("inline");
  const stage = hand("sink");
  try {
    const sink = await openStage(fx.sink, stage.ctx) as SinkInstance<unknown>;
    await sink.write(probeRecords(0, 10), stage.ctx);
    assert.deepEqual(missingOf(await fx.readIds(), 10), [], "the write before the kill");
    stage.kill();
    if (fx.connections) {
      await waitFor(() => fx.connections!() === 0, 5_000, () => `${fx.connections!()} connections`);
    }
  } finally {
    stage.kill();
    await fx.cleanup();
  }
  await socketsBackTo(h.serverPort, baseline);
  await sleep(300); // what the kill started (closing, disconnecting) ends before the sanitizers look
  if (!h.unreachable) return;
  const down = hand("sink");
  try {
    const sink = await openStage(h.unreachable(freePort()), down.ctx) as SinkInstance<unknown>;
    const error = await Promise.resolve(sink.write(probeRecords(0, 10), down.ctx)).then(
      () => undefined,
      (e: unknown) => e,
    );
    assert.equal((error as { code?: string } | undefined)?.code, "E_RETRIABLE", String(error));
    down.kill();
    // A client still reconnecting after the kill would start timers meanwhile.
    await sleep(h.killSettleMs ?? 300);
  } finally {
    down.kill();
  }
}
