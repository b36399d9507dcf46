// The supervisor tree of a running pipeline: root (this class) → one supervisor per stage group
// (restart intensity, strategy, backoff) → task instances. It wires channels, watches heartbeats,
// restarts and replays, rescales keyed stages and drains on stop.
import { assignPartitions } from "./partitioner.ts";
import { ConfigError, PipelineError } from "./errors.ts";
import type { DeadLetterSink } from "./dead_letter.ts";
import type { Strategy } from "./stage_ref.ts";
import type { StateBackend } from "./state_backend.ts";
import { type Group, type GroupEdge, type Plan, unkeyedState } from "./_graph.ts";
import type {
  FromTask,
  InputSpec,
  RouteSpec,
  StageCounters,
  StateSnapshot,
  ToTask,
} from "./_protocol.ts";
import { assertUnstableFlags, inlineHost, type TaskHost, workerHost } from "./_host.ts";
import { cloneFailure, isCloneError } from "./_clone.ts";
import { formatPath } from "./_config.ts";

/** Runtime settings taken from the pipeline options. */
export interface RuntimeOptions {
  name: string;
  mode: "workers" | "inline";
  partitions: number;
  heartbeatMs: number;
  startTimeoutMs: number;
  stopTimeoutMs: number;
  /** The dead-letter sink of each stage. */
  deadLetters: (stage: string) => DeadLetterSink;
  outOfOrdernessMs: number;
  signals: boolean;
  /** Where stateful stages checkpoint keyed state. */
  state: StateBackend;
  /** Period of checkpoints of stateful stages (they also ask for one under load). */
  checkpointMs: number;
  /** Restore stateful stages from the backend at start (resume a pipeline of the same name). */
  restoreState: boolean;
}

interface Instance {
  group: Group;
  index: number;
  /** Unique per incarnation: batches' `seq`s are numbered per sending incarnation. */
  id: number;
  host: TaskHost;
  ready: boolean;
  done: boolean;
  dead: boolean;
  startedAt: number;
  lastHb: number;
  failedAt?: number;
  counters: Record<string, StageCounters>;
  owned: number[];
  checkpointing?: Promise<void>;
  /** A checkpoint being written to the backend; a restart waits for it (see `#checkpoint`). */
  storing?: Promise<void>;
  /** Set once the host is told to end: resolves when its stages are closed and it is gone. */
  ended?: Promise<void>;
  /** It ended answering the kill: it said goodbye on its input channels as it closed them. */
  saidBye?: boolean;
  /** What of its counters was added to its slot's (or the retired) totals when it ended. */
  remembered?: Record<string, StageCounters>;
  /** Retired by a rescale: its counts go to the stage's retired total, not to a slot. */
  retired?: boolean;
  again?: boolean;
  /** The checkpoint asked for again is a flushed stage's last (see `#checkpointAlone`). */
  againLast?: boolean;
  /** Its final state, checkpointed alone, is stored: an aligned checkpoint's older one is not. */
  lastStored?: boolean;
  /** Its input ended: it flushes and finishes. */
  ending?: boolean;
  /**
   * Whether it passed everything on (flushed, outputs ended and acked, dead letters written), as
   * it said: failing then, it is not restarted. False when it failed owing something; undefined
   * while it has not said.
   */
  passedOn?: boolean;
  /** Requests waiting for its reply: rejected if it dies first. */
  waiting: Map<number, (error: Error) => void>;
}

/** An aligned checkpoint under way: who has yet to take it, and the snapshots taken so far. */
interface Aligned {
  id: number;
  waiting: Set<Instance>;
  taken: Map<Instance, FromTask & { t: "cpDone" }>;
  /** Told whether it was stored and committed (true) or aborted or failed (false). */
  settle: (stored: boolean) => void;
  outcome: Promise<boolean>;
}

/** A request's instance died before it replied. */
class Gone extends Error {
  /** The error for a request to `inst`. */
  static of(inst: Instance): Gone {
    return new Gone(`instance ${inst.index} of "${inst.group.id}" is gone`);
  }
}

/** What a finished run reports. */
export interface RunSummary {
  /** Per stage: counters summed over instances. */
  stages: Record<string, StageCounters & { restarts: number }>;
  /** Restart latencies (failure detected → replacement ready), in ms. */
  restartLatencies: number[];
  /**
   * Every failure the supervisors handled, in order; also a `close()` that threw or hung after
   * its instance was killed or failed (these restart nothing).
   */
  failures: { stage: string; instance: number; code: string; message: string; at: number }[];
}

export class Runtime {
  readonly #plan: Plan;
  readonly #o: RuntimeOptions;
  readonly #instances = new Map<Group, Instance[]>();
  /** Failure times per stage (a fused chain's stages are supervised each by its own options). */
  readonly #restartTimes = new Map<string, number[]>();
  /** Restarts waiting out their backoff: cleared when the pipeline ends. */
  readonly #restartTimers = new Set<ReturnType<typeof setTimeout>>();
  readonly #restarts = new Map<string, number>();
  readonly #replies = new Map<number, (m: FromTask & { t: "reply" }) => void>();
  readonly #latencies: number[] = [];
  readonly #failures: RunSummary["failures"] = [];
  /** Per stage and slot: the counts of the slot's ended incarnations (levels left out). */
  readonly #lastCounters = new Map<string, Map<number, StageCounters>>();
  /** Per stage: the counts of instances a rescale retired (levels left out). */
  readonly #retired = new Map<string, StageCounters>();
  #reqId = 0;
  #epoch = 0;
  #incarnation = 0;
  readonly #byId = new Map<number, Instance>();
  /** State names known to be in the backend's index, per stage. */
  readonly #names = new Map<string, Set<string>>();
  #checkpointTimer: ReturnType<typeof setInterval> | undefined;
  /** The aligned checkpoint under way: who has yet to take it, and the snapshots taken so far. */
  #cp: Aligned | undefined;
  /** An aligned checkpoint being written to the backend: a restart waits for it. */
  #cpStoring: Promise<void> | undefined;
  /**
   * A rescale waits to begin its pause (see `#pauseAtBarrier`): no other aligned checkpoint
   * starts meanwhile, or those asked for back to back could keep it waiting without end.
   */
  #pausing = false;
  /** Writes of checkpoints to the backend, one after another (newer state is written last). */
  #writes: Promise<void> = Promise.resolve();
  /** Another checkpoint is due once the one under way is done, or once restarts are. */
  #cpAgain = false;
  /** Whether any stage is stateful (else no checkpoint is ever taken). */
  #stateful = false;
  /**
   * Source groups with a stateful stage below (or fused in): their places are checkpointed with
   * that state, and a restarted instance resumes from its place in the checkpoint it is restored
   * with (a source that can seek; others resume from their committed offsets).
   */
  readonly #feeds = new Set<Group>();
  /** Groups whose instances take part in an aligned checkpoint: stateful, sinks, #feeds. */
  readonly #takers = new Set<Group>();
  /**
   * Edges whose records all end up in the state of a stateful stage or in a sink (into one, or
   * into stateless stages whose every output is such an edge): an aligned checkpoint stored holds
   * everything sent on them ahead of its barriers.
   */
  readonly #cut = new Set<string>();
  #monitor: ReturnType<typeof setInterval> | undefined;
  #resolve!: (s: RunSummary) => void;
  #reject!: (e: Error) => void;
  #ended = false;
  /** Resolves once every instance has ended after the run did (stages closed, workers gone). */
  #finished: Promise<void> | undefined;
  #stopping = false;
  /** When the `stop()` under way is forced (ms since the epoch). */
  #stopBy: number | undefined;
  #stopped: Promise<void> | undefined;
  /** A rescale under way: restarts in the stage or above it wait for it. */
  #scaling: Promise<void> | undefined;
  readonly #scalingRegion = new Set<Group>();
  /** The stage being rescaled and every stage below it. */
  readonly #scaleBelow = new Set<Group>();
  /** Ends the pause of a rescale when an instance of its region dies (see `#rescale`). */
  #pauseAbort: (() => void) | undefined;
  #busy: Promise<unknown> = Promise.resolve();
  #onSignal = () => void this.stop();

  constructor(plan: Plan, options: RuntimeOptions) {
    this.#plan = plan;
    this.#o = options;
  }

  /** Starts every task; resolves when all are done, rejects when a failure escalates to the root. */
  start(): Promise<RunSummary> {
    if (this.#o.mode === "workers") assertUnstableFlags();
    const done = new Promise<RunSummary>((resolve, reject) => {
      this.#resolve = resolve;
      this.#reject = reject;
    });
    for (const g of this.#plan.groups) {
      // Keyed input, or keyed state of its own (a stateful stage fused with its upstream owns
      // every partition): its checkpoints are stored, and restored, per partition.
      const keyed = this.#plan.edges.some((e) => e.to === g && e.mode === "hash");
      g.assignment = keyed || g.options.stateful
        ? assignPartitions(this.#o.partitions, g.parallelism)
        : [];
      this.#instances.set(g, []);
    }
    this.#stateful = this.#plan.groups.some((g) => g.options.stateful);
    for (const g of this.#plan.groups) {
      if (g.specs[0]!.kind !== "source") continue;
      if (g.options.stateful || this.#below(g).some((x) => x.options.stateful)) this.#feeds.add(g);
    }
    for (const g of this.#plan.groups) {
      if (g.options.stateful || this.#feeds.has(g) || g.specs.some((s) => s.kind === "sink")) {
        this.#takers.add(g);
      }
    }
    // Into a stateful task, whatever comes is in its state; into a stateless one, ending in a sink
    // or not, in whatever its outputs lead to.
    const held = (g: Group): boolean => {
      if (g.options.stateful) return true;
      const out = this.#plan.edges.filter((e) => e.from === g);
      const sink = g.specs.some((s) => s.kind === "sink");
      return (sink || out.length > 0) && out.every((e) => held(e.to));
    };
    for (const e of this.#plan.edges) if (held(e.to)) this.#cut.add(e.id);
    void this.#boot().catch((e) => this.#fail(e));
    this.#monitor = setInterval(() => this.#watch(), Math.max(10, this.#o.heartbeatMs / 4));
    if (this.#o.signals) {
      Deno.addSignalListener("SIGINT", this.#onSignal);
      Deno.addSignalListener("SIGTERM", this.#onSignal);
    }
    return done;
  }

  async #boot(): Promise<void> {
    const restore = new Map<string, Record<string, StateSnapshot>>();
    for (const g of this.#plan.groups) {
      if (!this.#o.restoreState || !g.options.stateful) continue;
      // Keys were stored per partition: under another count they would be looked for elsewhere.
      for (const spec of g.specs) {
        const [stored] = await this.#o.state.getMany([this.#stateKey(spec.stage, "partitions")]);
        if (stored !== undefined && stored !== this.#o.partitions) {
          throw new ConfigError(
            `Cannot restore the state of stage "${spec.stage}": it was stored with ${stored} ` +
              `partitions, this run has ${this.#o.partitions} (run with partitions: ${stored}, ` +
              `or without restoreState)`,
          );
        }
      }
      for (let i = 0; i < g.parallelism; i++) {
        restore.set(`${g.id}#${i}`, await this.#load(g, i, this.#ownedBy(g, i)));
      }
    }
    // Every task is wired before any starts, so none routes to a neighbour not yet connected.
    const all: Instance[] = [];
    for (const g of this.#plan.groups) {
      for (let i = 0; i < g.parallelism; i++) {
        all.push(this.#spawn(g, i, restore.get(`${g.id}#${i}`), true));
      }
    }
    for (const inst of all) inst.host.post({ t: "start" });
    this.#checkpointTimer = setInterval(() => this.#wantCheckpoint(), this.#o.checkpointMs);
  }

  #stateKey(stage: string, ...parts: (string | number)[]): string {
    return ["sluice", "state", this.#o.name, stage, ...parts].join("/");
  }

  /** Runs `write` once the writes before it are done. */
  #write(write: () => Promise<void>): Promise<void> {
    const run = this.#writes.then(write);
    this.#writes = run.catch(() => {});
    return run;
  }

  /** Writes a snapshot (one key per stage, state name and partition) to the backend. */
  async #store(instance: number, state: Record<string, StateSnapshot>): Promise<void> {
    const entries: [string, unknown][] = [];
    for (const [stage, snap] of Object.entries(state)) {
      const names = Object.keys(snap.keyed);
      const known = this.#names.get(stage) ?? new Set<string>();
      if (names.some((n) => !known.has(n))) {
        const [stored] = await this.#o.state.getMany([this.#stateKey(stage, "names")]);
        for (const n of [...((stored as string[] | undefined) ?? []), ...names]) known.add(n);
        this.#names.set(stage, known);
        entries.push([this.#stateKey(stage, "names"), [...known]]);
        entries.push([this.#stateKey(stage, "partitions"), this.#o.partitions]);
      }
      for (const [name, parts] of Object.entries(snap.keyed)) {
        for (const [p, list] of parts) entries.push([this.#stateKey(stage, name, p), list]);
      }
      if (snap.extra !== undefined) {
        entries.push([this.#stateKey(stage, "instance", instance), snap.extra]);
      }
      if (snap.watermark !== undefined) {
        entries.push([this.#stateKey(stage, "watermark", instance), snap.watermark]);
      }
    }
    if (entries.length > 0) await this.#o.state.setMany(entries);
  }

  /** Reads the stored state of `partitions` for every stage of `g`. */
  async #load(
    g: Group,
    instance: number,
    partitions: number[],
  ): Promise<Record<string, StateSnapshot>> {
    const out: Record<string, StateSnapshot> = {};
    for (const spec of g.specs) {
      const [names, extra, watermark] = await this.#o.state.getMany([
        this.#stateKey(spec.stage, "names"),
        this.#stateKey(spec.stage, "instance", instance),
        this.#stateKey(spec.stage, "watermark", instance),
      ]);
      const keyed: StateSnapshot["keyed"] = {};
      for (const name of (names as string[] | undefined) ?? []) {
        const keys = partitions.map((p) => this.#stateKey(spec.stage, name, p));
        const values = await this.#o.state.getMany(keys);
        keyed[name] = partitions.flatMap((p, i) => {
          const list = values[i] as [string, unknown][] | undefined;
          return list && list.length > 0 ? [[p, list] as [number, [string, unknown][]]] : [];
        });
      }
      out[spec.stage] = {
        keyed,
        extra: extra ?? undefined,
        watermark: typeof watermark === "number" ? watermark : undefined,
      };
    }
    return out;
  }

  /**
   * A checkpoint is asked for (by `inst`, or by the timer): an aligned one of the whole pipeline;
   * while a rescale is under way, one of each instance alone (see `#checkpointAlone`).
   */
  #wantCheckpoint(inst?: Instance): void {
    if (this.#ended) return;
    if (!this.#scaling) return void this.#checkpointAll();
    // Only the stage being rescaled and those below it, whose acks the rescale may wait for (a
    // retiring instance drains its outputs): they take in nothing past the barriers that paused
    // it but what it emits meanwhile. Elsewhere input goes on, which a checkpoint alone would hold
    // past the places the sources restart from: those wait for the next aligned one.
    const list = (inst ? [inst] : this.#plan.groups.filter((g) => g.options.stateful).flatMap(
      (g) => this.#live(g).filter((x) => x.ready && !x.done),
    )).filter((x) => this.#scaleBelow.has(x.group));
    this.#cpAgain = true;
    for (const x of list) void this.#checkpointAlone(x);
  }

  /**
   * Begins an aligned checkpoint (Flink's barriers): the sources put barrier n into their
   * outputs; each task takes it once it came on all its inputs, holding back those it came on
   * first; stateful tasks snapshot then, sinks write what came before. Once every stateful and
   * sink instance took it, the snapshots are stored and the input they cover acked. Every
   * checkpoint stored is thus one cut through the whole pipeline: a restart takes the instances
   * below a failed one back to it, and the failed one's replay holds nothing any of them counted.
   * One at a time; none while an instance is being restarted (its channels are being rewired).
   */
  #checkpointAll(pause?: string[], holdTicks?: Set<Group>): Aligned | undefined {
    if (this.#ended || !this.#stateful) return;
    const blocked = this.#cp || this.#cpStoring || this.#scaling || !this.#quiet() ||
      (this.#pausing && pause === undefined);
    if (blocked) {
      this.#cpAgain = true;
      return;
    }
    this.#cpAgain = false;
    const live = [...this.#instances.values()].flat().filter((x) => x && !x.dead && !x.done);
    const waiting = new Set(live.filter((x) => this.#takers.has(x.group)));
    if (waiting.size === 0) return;
    const id = ++this.#epoch;
    let settle!: (stored: boolean) => void;
    const outcome = new Promise<boolean>((resolve) => settle = resolve);
    this.#cp = { id, waiting, taken: new Map(), settle, outcome };
    for (const inst of live) {
      const hold = holdTicks?.has(inst.group) || undefined;
      inst.host.post({ t: "checkpoint", id, pause, holdTicks: hold });
    }
    return this.#cp;
  }

  /** Every slot has a live, ready incarnation (or a done one): no restart is under way. */
  #quiet(): boolean {
    for (const g of this.#plan.groups) {
      const list = this.#instances.get(g) ?? [];
      for (let i = 0; i < g.parallelism; i++) {
        const x = list[i];
        if (!x) return false;
        if (x.done) continue;
        if (x.dead || !x.ready) return false;
      }
    }
    return true;
  }

  /** `inst` took the aligned checkpoint under way. */
  #cpDone(inst: Instance, m: FromTask & { t: "cpDone" }): void {
    const cp = this.#cp;
    if (!cp || m.id !== cp.id || !cp.waiting.delete(inst)) return;
    if (m.state) cp.taken.set(inst, m);
    if (cp.waiting.size === 0) this.#complete(cp);
  }

  /** `inst` is done: the checkpoint under way no longer waits for it. */
  #cpLeft(inst: Instance): void {
    const cp = this.#cp;
    if (cp && cp.waiting.delete(inst) && cp.waiting.size === 0) this.#complete(cp);
  }

  /** Every instance took the checkpoint: it is stored, then the input it covers is acked. */
  #complete(cp: Aligned): void {
    this.#cp = undefined;
    // Upstream incarnations of the input each snapshot holds, known before it is stored.
    const acks = [...cp.taken].map(([inst, m]) => [inst, this.#acksOf(m.covered)] as const);
    const storing = this.#write(async () => {
      for (const [inst, m] of cp.taken) {
        if (!inst.lastStored) await this.#store(inst.index, m.state ?? {});
      }
    });
    this.#cpStoring = storing;
    storing.then(() => {
      // Stored: the input it holds is done. The supervisor acks it upstream itself, at once, so
      // that an instance that dies before it hears of the commit is restored to this checkpoint
      // (its restart waits for `#cpStoring`) and not sent that input again: no double count.
      for (const [inst, list] of acks) {
        for (const [up, edge, seqs] of list) {
          if (!up.dead) up.host.post({ t: "acked", edge, to: inst.index, seqs });
        }
      }
      // And every instance: what it sent ahead of the barriers is done wherever the records end up
      // in this checkpoint. A stateless one that dies before it hears the acks coming up from
      // below is not sent that input again (its own replay would be counted twice).
      const edges = [...this.#cut];
      for (const list of this.#instances.values()) {
        for (const x of list) {
          if (x && !x.dead && !x.done) x.host.post({ t: "committed", epoch: cp.id, edges });
        }
      }
      cp.settle(true);
    }, (cause) => {
      cp.settle(false);
      this.#fail(
        new PipelineError(
          `Cannot checkpoint pipeline "${this.#o.name}": the state backend failed`,
          {
            cause,
          },
        ),
      );
    }).finally(() => {
      this.#cpStoring = undefined;
      if (this.#cpAgain) this.#checkpointAll();
    });
  }

  /** The checkpoint under way cannot complete (an instance died, a rescale begins): void. */
  #abortCheckpoint(): void {
    const cp = this.#cp;
    if (!cp) return;
    this.#cp = undefined;
    this.#cpAgain = true;
    cp.settle(false);
    for (const list of this.#instances.values()) {
      for (const x of list) if (x && !x.dead && !x.done) x.host.post({ t: "abort", id: cp.id });
    }
  }

  /** Acks to send upstream for `covered` input batches, grouped per upstream incarnation and edge. */
  #acksOf(covered: [string, number, number, number][] | undefined): [Instance, string, number[]][] {
    const acks: [Instance, string, number[]][] = [];
    for (const [edge, from, sender, seq] of covered ?? []) {
      const up = this.#byId.get(sender);
      if (!up || up.index !== from) continue;
      const last = acks.at(-1);
      if (last && last[0] === up && last[1] === edge) last[2].push(seq);
      else acks.push([up, edge, [seq]]);
    }
    return acks;
  }

  /**
   * Checkpoints one stateful instance alone: while a rescale is under way (its input paused, no
   * barrier gets through), touched partitions; a flushed instance's `last` state, every partition
   * it owns. They go to the backend, then its acks go.
   */
  #checkpointAlone(inst: Instance, last = false): Promise<void> {
    if (inst.checkpointing) {
      // Asked for while one is under way: it may have been taken before the batches that asked
      // now, so another one follows.
      inst.again = true;
      if (last) inst.againLast = true;
      return inst.checkpointing;
    }
    const run = (async () => {
      const epoch = ++this.#epoch;
      const id = ++this.#reqId;
      const reply = await this.#request(inst, {
        t: "snapshot",
        id,
        // The last one writes every partition it owns, emptied ones too (older state goes).
        partitions: last ? inst.owned : "dirty",
        drop: false,
        epoch,
      });
      if (inst.dead) return;
      // Upstream incarnations of the input the checkpoint holds, known before it is stored.
      const acks = this.#acksOf(reply.covered);
      const storing = this.#write(async () => {
        await this.#store(inst.index, reply.state ?? {});
        if (last) inst.lastStored = true;
      });
      inst.storing = storing;
      try {
        await storing;
      } finally {
        inst.storing = undefined;
      }
      // Stored: the input it holds is done. The supervisor acks it upstream itself, at once, so
      // that if the instance dies before it hears of the commit, its replacement (which waits for
      // `storing`) restores this checkpoint and is not sent that input again: no double count.
      for (const [up, edge, seqs] of acks) {
        if (!up.dead) up.host.post({ t: "acked", edge, to: inst.index, seqs });
      }
      if (!inst.dead) inst.host.post({ t: "committed", epoch });
    })().catch((cause) => {
      if (cause instanceof Gone) return; // it died: its replacement restores the last checkpoint
      const stage = inst.group.specs[0]!.stage;
      this.#fail(
        new PipelineError(`Cannot checkpoint stage "${stage}": the state backend failed`, {
          cause,
        }),
      );
    }).finally(() => {
      inst.checkpointing = undefined;
      if (inst.again && !inst.dead && !this.#ended) {
        inst.again = false;
        void this.#checkpointAlone(inst, inst.againLast);
      }
    });
    inst.checkpointing = run;
    return run;
  }

  /** Whether `v` still holds its slot: not replaced since, nor retired by a rescale. */
  #current(v: Instance): boolean {
    return v.index < v.group.parallelism && this.#instances.get(v.group)![v.index] === v;
  }

  #live(g: Group): Instance[] {
    return (this.#instances.get(g) ?? []).filter((x) => !x.dead);
  }

  #connected(e: GroupEdge, a: number, b: number): boolean {
    return e.mode !== "forward" || a === b;
  }

  #ownedBy(g: Group, index: number): number[] {
    const owned: number[] = [];
    g.assignment.forEach((owner, p) => owner === index && owned.push(p));
    return owned;
  }

  /** Starts instance `index` of `g`, wiring channels to every live neighbour. */
  #spawn(g: Group, index: number, restore?: Record<string, StateSnapshot>, hold = false): Instance {
    const id = ++this.#incarnation;
    const transfer: Transferable[] = [];
    const inputs: InputSpec[] = [];
    const pending: [string, number][] = [];
    const bye = this.#instances.get(g)?.[index]?.saidBye === true;
    for (const e of this.#plan.edges.filter((x) => x.to === g)) {
      const above = this.#instances.get(e.from) ?? [];
      for (let a = 0; a < e.from.parallelism; a++) {
        const up = above[a];
        // Not there yet (the graph is being wired), or dead and yet to be restarted: it connects.
        if (this.#connected(e, a, index) && (!up || (up.dead && !up.done))) {
          pending.push([e.id, a]);
        }
      }
      for (const up of this.#live(e.from)) {
        if (!this.#connected(e, up.index, index) || up.done) continue;
        const ch = new MessageChannel();
        inputs.push({
          edge: e.id,
          from: up.index,
          port: ch.port2,
          watermark: -Infinity,
          sender: up.id,
        });
        transfer.push(ch.port2);
        if (up.ready || !up.dead) {
          up.host.post({ t: "connectOut", edge: e.id, to: index, port: ch.port1, bye }, [
            ch.port1,
          ]);
        }
      }
    }
    const outputs: RouteSpec[] = [];
    for (const e of this.#plan.edges.filter((x) => x.from === g)) {
      const ports: [number, MessagePort][] = [];
      const finished: number[] = [];
      const waiting: number[] = [];
      for (const d of this.#instances.get(e.to) ?? []) {
        if (!d || !this.#connected(e, index, d.index)) continue;
        const b = d.index;
        // It had everything the instance this one replaces sent it: a replay would go nowhere.
        if (d.done) {
          finished.push(b);
          continue;
        }
        if (d.dead) {
          waiting.push(b); // its replacement connects to this one when it starts
          continue;
        }
        const ch = new MessageChannel();
        ports.push([b, ch.port1]);
        transfer.push(ch.port1);
        d.host.post({
          t: "connectIn",
          edge: e.id,
          from: index,
          port: ch.port2,
          watermark: -Infinity,
          sender: id,
        }, [ch.port2]);
      }
      const o = e.to.options;
      outputs.push({
        edge: e.id,
        mode: e.mode,
        assignment: e.to.assignment,
        ports,
        capacity: o.capacity,
        batchSize: g.options.batchSize,
        lingerMs: g.options.lingerMs,
        side: e.side,
        finished,
        pending: waiting,
      });
    }
    const now = Date.now();
    const inst: Instance = {
      group: g,
      index,
      id,
      host: undefined as unknown as TaskHost,
      ready: false,
      done: false,
      dead: false,
      startedAt: now,
      lastHb: now,
      counters: {},
      owned: this.#ownedBy(g, index),
      waiting: new Map(),
    };
    const onMessage = (m: FromTask) => this.#onMessage(inst, m);
    inst.host = this.#o.mode === "workers"
      ? workerHost(
        `${g.id}#${index}`,
        g.specs,
        onMessage,
        (msg) => {
          inst.host.abort(); // the worker is gone: nothing left to close
          this.#failure(inst, "E_WORKER", msg, g.specs[0]!.stage);
        },
      )
      : inlineHost(onMessage);
    const list = this.#instances.get(g)!;
    list[index] = inst;
    this.#byId.set(id, inst);
    const init: ToTask = {
      t: "init",
      task: g.id,
      instance: index,
      parallelism: g.parallelism,
      partitions: this.#o.partitions,
      owned: inst.owned,
      chain: g.specs,
      inputs,
      outputs,
      heartbeatMs: this.#o.heartbeatMs,
      closeTimeoutMs: this.#o.stopTimeoutMs,
      stopBy: this.#stopBy,
      pending,
      idleTimeoutMs: g.options.idleTimeoutMs,
      restore,
      hold,
      ticksHeld: this.#scaleBelow.has(g) || undefined,
      checkpoint: g.options.stateful,
      feedsState: this.#feeds.has(g) || undefined,
      capacity: g.options.capacity,
      epoch: this.#epoch,
      alignMs: g.options.align?.maxDriftMs,
      source: { outOfOrdernessMs: this.#o.outOfOrdernessMs, batchSize: g.options.batchSize },
    };
    try {
      inst.host.post(init, transfer);
    } catch (error) {
      if (!isCloneError(error)) throw error;
      // What the build's walk of each config could not see (a Proxy): named here, by a clone.
      for (const spec of g.specs) {
        const stuck = cloneFailure(spec.config);
        if (!stuck) continue;
        throw new ConfigError(
          `Cannot configure stage "${spec.stage}": ${formatPath("config", stuck.path)}: cannot ` +
            `be sent to a worker (${stuck.what})`,
          { site: { stage: spec.stage } },
        );
      }
      throw error;
    }
    // Restarted while the pipeline stops: a source stops as soon as it is open.
    if (this.#stopping && g.specs[0]!.kind === "source") inst.host.post({ t: "stop" });
    return inst;
  }

  #onMessage(inst: Instance, m: FromTask): void {
    if (m.t === "closeError") {
      const { code, message } = m.error;
      this.#failures.push({ stage: m.stage, instance: inst.index, code, message, at: Date.now() });
      return;
    }
    // A killed task may still talk while it closes its stages: not to be heard any more.
    if (inst.dead || this.#ended) return;
    switch (m.t) {
      case "ready":
        inst.ready = true;
        inst.lastHb = Date.now();
        if (inst.failedAt !== undefined) this.#latencies.push(Date.now() - inst.failedAt);
        if (this.#cpAgain) this.#checkpointAll();
        break;
      case "hb":
        inst.lastHb = Date.now();
        inst.counters = m.counters;
        break;
      case "error":
        if (m.counters) inst.counters = m.counters;
        if (m.spent !== undefined) inst.passedOn = m.spent;
        this.#failure(inst, m.error.code, m.error.message, m.stage, m.fatal);
        break;
      case "dlq":
        // A write() that throws at once fails like one that rejects.
        new Promise<void>((resolve) =>
          resolve(this.#o.deadLetters(m.entries[0]?.stage ?? "").write(m.entries))
        ).then(
          () => inst.host.post({ t: "dlqAck", id: m.id }),
          (e) =>
            inst.host.post({ t: "dlqAck", id: m.id, error: { code: "E_DLQ", message: String(e) } }),
        );
        break;
      case "wantCheckpoint":
        // A flushed stage's last state: alone, whole (an aligned checkpoint may wait long for
        // the others; this one holds everything it took in, which nothing can add to now).
        if (m.last) void this.#checkpointAlone(inst, true);
        else this.#wantCheckpoint(inst);
        break;
      case "cpDone":
        this.#cpDone(inst, m);
        break;
      case "reply":
        this.#replies.get(m.id)?.(m);
        this.#replies.delete(m.id);
        break;
      case "ending":
        inst.ending = true;
        break;
      case "passedOn":
        inst.passedOn = true;
        break;
      case "done":
        inst.done = true;
        inst.counters = m.counters;
        this.#cpLeft(inst);
        this.#maybeDone();
        break;
    }
  }

  #request(inst: Instance, message: ToTask & { id: number }): Promise<FromTask & { t: "reply" }> {
    return new Promise((resolve, reject) => {
      if (inst.dead) {
        return reject(Gone.of(inst));
      }
      this.#replies.set(message.id, (m) => {
        inst.waiting.delete(message.id);
        resolve(m);
      });
      inst.waiting.set(message.id, reject);
      inst.host.post(message);
    });
  }

  /** Marks an incarnation dead: its pending requests fail, nothing it says is heard any more. */
  #bury(inst: Instance): void {
    inst.dead = true;
    this.#abortCheckpoint();
    this.#abandon(inst);
    if (this.#scalingRegion.has(inst.group)) this.#pauseAbort?.();
  }

  /** Fails the requests waiting for `inst` to reply (it died, or the pipeline ended). */
  #abandon(inst: Instance): void {
    for (const [id, reject] of inst.waiting) {
      this.#replies.delete(id);
      reject(Gone.of(inst));
    }
    inst.waiting.clear();
  }

  #watch(): void {
    if (this.#ended) return;
    // Inline, a stage shares the main thread: no heartbeat to miss, but an open() may never end.
    const beats = this.#o.mode === "workers";
    const now = Date.now();
    for (const list of this.#instances.values()) {
      for (const inst of list) {
        if (!inst || inst.dead || inst.done) continue;
        if (beats && inst.ready && now - inst.lastHb > 2 * this.#o.heartbeatMs) {
          inst.host.abort(); // hung: it would not close its stages anyway
          this.#failure(
            inst,
            "E_HEARTBEAT",
            `missed heartbeats for ${now - inst.lastHb} ms (hung?)`,
            inst.group.specs[0]!.stage,
          );
        } else if (!inst.ready && now - inst.startedAt > this.#o.startTimeoutMs) {
          inst.host.abort();
          this.#failure(
            inst,
            "E_START",
            `not ready after ${this.#o.startTimeoutMs} ms`,
            inst.group.specs[0]!.stage,
          );
        }
      }
    }
  }

  #failure(inst: Instance, code: string, message: string, stage: string, fatal = false): void {
    if (inst.dead || this.#ended) return;
    const g = inst.group;
    const now = Date.now();
    this.#bury(inst);
    this.#end(inst);
    this.#remember(inst);
    this.#failures.push({ stage, instance: inst.index, code, message, at: now });
    if (inst.done || this.#spent(inst)) {
      // It failed after it passed everything on (its last ack, say), or even once it was done:
      // nothing is left to replay. It counts as done, not as waiting for a restart.
      this.#finishSpent(inst);
      return;
    }
    // The stage that failed is supervised by its own options, also when it runs fused.
    const own = g.supervision.has(stage) ? stage : g.specs[0]!.stage;
    const sup = g.supervision.get(own) ?? g.options;
    const times = (this.#restartTimes.get(own) ?? []).filter((t) => now - t < sup.withinMs);
    times.push(now);
    this.#restartTimes.set(own, times);
    if (fatal || times.length > sup.maxRestarts) {
      const parts = inst.owned.length > 0 ? ` (partitions ${inst.owned.join(",")})` : "";
      const how = !fatal
        ? `failed ${times.length} times within ${sup.withinMs} ms`
        : inst.ready
        ? "failed in a way no restart can cure"
        : "could not start";
      this.#fail(
        new PipelineError(
          `Cannot run pipeline "${this.#o.name}": stage "${stage}" instance ${inst.index}${parts} ` +
            `${how}; ${fatal ? "cause" : "last cause"} ${code}: ${message}`,
          { site: { stage, instance: inst.index, partitions: inst.owned } },
        ),
      );
      return;
    }
    this.#restarts.set(stage, (this.#restarts.get(stage) ?? 0) + 1);
    const victims = this.#victims(inst, sup.strategy);
    for (const v of victims) {
      if (!v.dead) {
        this.#bury(v);
        this.#end(v);
        this.#remember(v);
      }
    }
    const delay = Math.min(5000, 10 * 2 ** (times.length - 1)) * (0.5 + Math.random() / 2);
    const timer = setTimeout(async () => {
      this.#restartTimers.delete(timer);
      if (this.#ended) return;
      try {
        // Where a rescale is under way (the stage and above), it finishes first, and may have
        // replaced some of them already. Below it they restart at once: it may wait on their acks.
        const held = (v: Instance) =>
          this.#scaling !== undefined && this.#scalingRegion.has(v.group);
        for (const v of [...victims.filter((v) => !held(v)), ...victims.filter(held)]) {
          while (this.#scaling && this.#scalingRegion.has(v.group)) await this.#scaling;
          // The old incarnation's stages are closed first (bounded): a replacement that opens the
          // same resources (ports, locks, consumer group seats) does not race them.
          await v.ended;
          if (this.#ended) return;
          if (!this.#current(v)) continue;
          await this.#whilst(() => this.#belowFinishing(v));
          if (this.#ended) return;
          if (!this.#current(v)) continue;
          if (this.#spent(v)) {
            this.#finishSpent(v); // everything below it has finished meanwhile: nothing to replay
            continue;
          }
          // A stateful instance comes back with its last checkpoint; unacked input is replayed.
          // A checkpoint it was writing when it died is part of it (its input is acked).
          await v.storing?.catch(() => {});
          await this.#cpStoring?.catch(() => {});
          // A source feeding state resumes from its place in that checkpoint: where the state
          // below, restored too, ends (not where its commits had got to, which may be behind).
          const restore = v.group.options.stateful || this.#feeds.has(v.group)
            ? await this.#load(v.group, v.index, this.#ownedBy(v.group, v.index))
            : undefined;
          if (this.#ended) return;
          if (!this.#current(v)) continue;
          const fresh = this.#spawn(v.group, v.index, restore);
          fresh.failedAt = now;
        }
      } catch (cause) {
        this.#fail(
          new PipelineError(`Cannot restart stage "${stage}": its state could not be loaded`, {
            cause,
          }),
        );
      }
    }, delay);
    this.#restartTimers.add(timer);
  }

  /**
   * Whether `inst` had passed everything on: it said so (flushed, outputs ended and acked, dead
   * letters written), or, when it died without a word, it has outputs and every instance they
   * reach has finished (each had the end of its stream from `inst`, after all the rest).
   */
  #spent(inst: Instance): boolean {
    // It said (false: it still waited for dead letters to be written, say): no guess then.
    if (inst.passedOn !== undefined) return inst.passedOn;
    const edges = this.#plan.edges.filter((e) => e.from === inst.group);
    return edges.length > 0 &&
      edges.every((e) =>
        (this.#instances.get(e.to) ?? []).every((d) =>
          !d || !this.#connected(e, inst.index, d.index) || d.done
        )
      );
  }

  /** A spent instance is done for good: nothing waits for it, above or below. */
  #finishSpent(inst: Instance): void {
    inst.done = true;
    this.#release(inst);
    // Below, a task started while it was dead waits for its channel: none will come.
    for (const e of this.#plan.edges.filter((x) => x.from === inst.group)) {
      for (const d of this.#live(e.to)) {
        if (d.done || !this.#connected(e, inst.index, d.index)) continue;
        d.host.post({ t: "dropIn", edge: e.id, from: inst.index, sender: inst.id });
      }
    }
    this.#maybeDone();
  }

  /**
   * Whether an instance below `v`, which had the end of its stream from it, is still finishing
   * (flushing, closing): it takes no new channel, and whether it needs a replay from `v` shows
   * once it is done (then none) or dead (then it is restarted too).
   */
  #belowFinishing(v: Instance): boolean {
    return this.#plan.edges.some((e) =>
      e.from === v.group &&
      this.#live(e.to).some((d) =>
        this.#connected(e, v.index, d.index) && d.ending === true && !d.done
      )
    );
  }

  /** Tells the instances above a spent one that what they keep for it is done. */
  #release(inst: Instance): void {
    for (const e of this.#plan.edges.filter((x) => x.to === inst.group)) {
      for (const up of this.#live(e.from)) {
        if (up.done || !this.#connected(e, up.index, inst.index)) continue;
        up.host.post({ t: "dropOut", edge: e.id, to: inst.index });
      }
    }
  }

  /**
   * Which instances restart, upstream first: by the group's strategy, and besides every stateful
   * instance below it. The failed instance's unacked input is replayed, and what it derives would
   * be counted twice by a stateful stage that took it in since its last checkpoint, so such a
   * stage goes back to that checkpoint too (as Flink restarts a failed task's region).
   */
  #victims(inst: Instance, strategy: Strategy): Instance[] {
    const g = inst.group;
    const groups = this.#plan.groups;
    const live = (x: Group) => this.#live(x).filter((i) => !i.done);
    let own: Instance[];
    switch (strategy) {
      case "one_for_one":
        own = [inst];
        break;
      case "one_for_all":
        // Not those already finished: their input is done, restarted they would read it again.
        own = this.#instances.get(g)!.filter((x) => x && (x === inst || !x.done));
        break;
      case "rest_for_one":
        return [inst, ...groups.slice(groups.indexOf(g) + 1).flatMap(live)];
    }
    // And every stage on the way down to a stateful one: left alive, it would replay the batches
    // it keeps to the restarted stateful stage, which the failed one's replay sends again.
    const below = this.#below(g);
    const stateful = below.filter((x) => x.options.stateful);
    const region = below.filter((x) =>
      x.options.stateful || stateful.some((s) => this.#below(x).includes(s))
    );
    region.sort((a, b) => groups.indexOf(a) - groups.indexOf(b));
    return [...own, ...region.flatMap(live)];
  }

  /**
   * Every group that `g`'s output reaches, through any edge. Never `g` itself: the builder only
   * feeds a stage into later ones.
   */
  #below(g: Group): Group[] {
    const seen = new Set<Group>();
    const visit = (x: Group) => {
      for (const e of this.#plan.edges) {
        if (e.from !== x || seen.has(e.to)) continue;
        seen.add(e.to);
        visit(e.to);
      }
    };
    visit(g);
    return [...seen];
  }

  /**
   * Adds an ending incarnation's counts to its slot's total (or the retired one), once: its
   * levels (mailbox, credits) are its own and end with it. The counts it reports as it ends come
   * later ({@linkcode Runtime.#late}).
   */
  #remember(inst: Instance): void {
    const remembered = inst.remembered ?? {};
    for (const [stage, c] of Object.entries(inst.counters)) {
      this.#addEnded(inst, stage, c);
      remembered[stage] = remembered[stage] ? sum([remembered[stage], c]) : c;
    }
    inst.remembered = remembered;
    inst.counters = {};
  }

  /** The counts an incarnation reported as it ended, beyond what was remembered of it. */
  #late(inst: Instance, final: Record<string, StageCounters>): void {
    if (!inst.remembered) {
      inst.counters = final; // not remembered yet: it will be with these
      return;
    }
    for (const [stage, c] of Object.entries(final)) {
      const seen = inst.remembered[stage];
      const delta = seen ? minus(c, seen) : c;
      if (delta.in + delta.out + delta.failed + delta.deadLettered + delta.batches === 0) continue;
      this.#addEnded(inst, stage, delta);
      inst.remembered[stage] = c;
    }
  }

  #addEnded(inst: Instance, stage: string, c: StageCounters): void {
    const counts = { ...c, mailbox: 0, credits: 0 };
    if (inst.retired || inst.index >= inst.group.parallelism) {
      return addInto(this.#retired, stage, counts);
    }
    const byInstance = this.#lastCounters.get(stage) ?? new Map();
    addInto(byInstance, inst.index, counts);
    this.#lastCounters.set(stage, byInstance);
  }

  /** Slots `from` and up of `g` are gone (a rescale): what their incarnations counted is retired. */
  #retireSlots(g: Group, from: number): void {
    for (const inst of this.#instances.get(g) ?? []) {
      if (inst && inst.index >= from) inst.retired = true;
    }
    for (const spec of g.specs) {
      const byInstance = this.#lastCounters.get(spec.stage);
      if (!byInstance) continue;
      for (const [index, c] of byInstance) {
        if (index < from) continue;
        addInto(this.#retired, spec.stage, c);
        byInstance.delete(index);
      }
    }
  }

  #maybeDone(): void {
    for (const list of this.#instances.values()) {
      for (const inst of list) if (inst && !inst.dead && !inst.done) return;
    }
    void this.#finish().then(() => this.#resolve(this.summary()));
  }

  #fail(error: Error): void {
    if (this.#ended) return;
    void this.#finish().then(() => this.#reject(error));
  }

  /** Tells an instance's host to end (closing its stages first, bounded), once. */
  #end(inst: Instance): Promise<void> {
    inst.ended ??= inst.host.terminate().then((final) => {
      // Its counts come with the answer to the kill, sent once it said goodbye on its channels.
      inst.saidBye = final !== undefined;
      if (final) this.#late(inst, final);
    });
    return inst.ended;
  }

  /** Ends every instance; resolves once all are gone, each after closing its stages (bounded). */
  #finish(): Promise<void> {
    this.#ended = true;
    clearInterval(this.#monitor);
    for (const timer of this.#restartTimers) clearTimeout(timer);
    this.#restartTimers.clear();
    clearInterval(this.#checkpointTimer);
    for (const list of this.#instances.values()) {
      for (const inst of list) {
        if (!inst) continue;
        if (!inst.dead) this.#remember(inst);
        this.#end(inst);
        this.#abandon(inst);
      }
    }
    if (this.#o.signals) {
      Deno.removeSignalListener("SIGINT", this.#onSignal);
      Deno.removeSignalListener("SIGTERM", this.#onSignal);
    }
    // Every incarnation, also those replaced or retired earlier that may still be closing.
    const all = [...this.#byId.values()].map((inst) => inst.ended);
    this.#finished = Promise.all(all).then(() => {});
    return this.#finished;
  }

  /**
   * Counters per stage, per instance running now, as last reported (restarted incarnations added
   * up). The summary also counts instances retired by a rescale.
   */
  counters(): Record<string, { instances: StageCounters[]; restarts: number }> {
    const out: Record<string, { instances: StageCounters[]; restarts: number }> = {};
    for (const g of this.#plan.groups) {
      for (const spec of g.specs) {
        const instances: StageCounters[] = [];
        for (const inst of this.#instances.get(g) ?? []) {
          if (!inst) continue;
          const prior = this.#lastCounters.get(spec.stage)?.get(inst.index);
          const live = inst.counters[spec.stage];
          const parts = [prior, live].filter((c): c is StageCounters => c !== undefined);
          if (parts.length > 0) instances[inst.index] = sum(parts);
        }
        out[spec.stage] = { instances, restarts: this.#restarts.get(spec.stage) ?? 0 };
      }
    }
    return out;
  }

  /** The summary of a finished (or running) pipeline. */
  summary(): RunSummary {
    const stages: RunSummary["stages"] = {};
    for (const [stage, { instances, restarts }] of Object.entries(this.counters())) {
      // Instances retired by a rescale count too.
      const retired = this.#retired.get(stage);
      const all = [...instances.filter(Boolean), ...(retired ? [retired] : [])];
      stages[stage] = { ...sum(all), restarts };
    }
    return { stages, restartLatencies: [...this.#latencies], failures: [...this.#failures] };
  }

  /**
   * Sources stop, in-flight records drain; after `stopTimeoutMs` everything is killed (stages
   * closed, bounded). Resolves once every instance has ended.
   */
  stop(): Promise<void> {
    this.#stopped ??= this.#stop();
    return this.#stopped;
  }

  async #stop(): Promise<void> {
    if (this.#ended) return await this.#finished;
    this.#stopping = true;
    const deadline = Date.now() + this.#o.stopTimeoutMs;
    this.#stopBy = deadline;
    for (const g of this.#plan.groups) {
      for (const inst of this.#live(g)) {
        // The stages' close() hooks at the end of the drain get what is left of the stop's time.
        inst.host.post({ t: "stopBy", at: deadline });
        if (g.specs[0]!.kind === "source") inst.host.post({ t: "stop" });
      }
    }
    while (!this.#ended && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    if (!this.#ended) {
      this.#fail(
        new PipelineError(
          `Cannot stop pipeline "${this.#o.name}" in ${this.#o.stopTimeoutMs} ms: forced`,
        ),
      );
    }
    await this.#finished;
  }

  /** Changes a stage's parallelism while records flow, moving keyed state with its partitions. */
  scale(stage: string, n: number): Promise<void> {
    const run = this.#busy.then(() => this.#scale(stage, n));
    this.#busy = run.catch(() => {});
    return run;
  }

  async #scale(stage: string, n: number): Promise<void> {
    const g = this.#plan.groups.find((x) => x.specs.some((s) => s.stage === stage));
    if (!g) throw new RangeError(`Cannot scale: no stage "${stage}"`);
    if (!Number.isInteger(n) || n < 1 || n > this.#o.partitions) {
      throw new RangeError(
        `Cannot scale "${stage}": parallelism ${n} is not within 1..${this.#o.partitions}`,
      );
    }
    const ins = this.#plan.edges.filter((e) => e.to === g);
    const outs = this.#plan.edges.filter((e) => e.from === g);
    if (g.specs.length > 1 && g.options.stateful) {
      const others = g.specs.filter((s) => s.stage !== stage).map((s) => `"${s.stage}"`);
      throw new RangeError(
        `Cannot scale "${stage}": it runs fused with ${others.join(", ")} at parallelism 1; ` +
          `give it { fuse: false } to rescale it at run time`,
      );
    }
    if ([...ins, ...outs].some((e) => e.mode === "forward") || g.specs[0]!.kind === "source") {
      throw new RangeError(`Cannot scale "${stage}": it is fused or forward-wired to a neighbour`);
    }
    if (n > 1 && g.options.stateful && ins.some((e) => e.mode !== "hash")) {
      throw new RangeError(unkeyedState(stage, n));
    }
    if (n === g.parallelism || this.#ended) return;
    const above = ins.map((e) => e.from);
    for (;;) {
      // Restarts under way in the stage or above it finish first: a rescale moves settled state.
      await this.#settled([g, ...above]);
      if (this.#ended) return;
      this.#refuseFinishing(stage, g, above);
      const region = new Set([g, ...this.#below(g)]);
      if (!await this.#pauseAtBarrier(g, region)) continue;
      let finished!: () => void;
      this.#scaling = new Promise<void>((resolve) => finished = resolve);
      for (const x of [g, ...above]) this.#scalingRegion.add(x);
      for (const x of region) this.#scaleBelow.add(x);
      // Its pause lets no barrier through: checkpoints are taken per instance until it is done.
      // Nor do the stage and those below emit without input meanwhile (ticks): a failure could
      // take them back to before it, past what a stateful stage below had taken in and stored.
      this.#abortCheckpoint();
      this.#holdTicks(true);
      try {
        if (await this.#rescale(stage, g, n)) return;
      } finally {
        this.#holdTicks(false);
        this.#scaling = undefined;
        this.#scalingRegion.clear();
        this.#scaleBelow.clear();
        finished();
        if (this.#cpAgain) this.#checkpointAll();
      }
    }
  }

  /**
   * The start of a rescale's pause, in a stateful pipeline: an aligned checkpoint whose barriers
   * stop the routing into `g` right behind them. Once it is stored, everything `g` got is in it and
   * acked (`committed`), and `g` gets nothing more until the rescale resumes its inputs: the state
   * the rescale moves, and any restored during it, ends where the sources' places in that
   * checkpoint do. (Paused by plain requests instead, `g` would be checkpointed instance by
   * instance, past the places the sources restart from if one fails: its input counted twice.)
   * False if the checkpoint was aborted (an instance died): the inputs are resumed, to try again.
   */
  async #pauseAtBarrier(g: Group, region: Set<Group>): Promise<boolean> {
    if (!this.#stateful) return true;
    const ins = this.#plan.edges.filter((e) => e.to === g);
    this.#pausing = true;
    try {
      await this.#whilst(() =>
        this.#cp !== undefined || this.#cpStoring !== undefined || !this.#quiet()
      );
    } finally {
      this.#pausing = false;
    }
    if (this.#ended) return false;
    // `region`, the stage and those below, hold their ticks from their snapshots on (see
    // `#holdTicks`).
    const cp = this.#checkpointAll(ins.map((e) => e.id), region);
    // Nothing takes checkpoints: the rescale's own pause waits for the acks.
    if (!cp) return true;
    if (await cp.outcome) return true;
    this.#resumeInputs(g, g.assignment, []);
    this.#holdTicks(false, region);
    return false;
  }

  /**
   * Holds, or lets go, the `onTick` hooks of the rescaled stage and those below it (`#scaleBelow`).
   * The pause's checkpoint holds them first, each task from its snapshot on; an instance started
   * during the rescale starts with them held (`ticksHeld`).
   */
  #holdTicks(held: boolean, groups: Set<Group> = this.#scaleBelow): void {
    for (const x of groups) {
      for (const inst of this.#live(x)) {
        if (!inst.dead && !inst.done) inst.host.post({ t: "ticks", on: !held });
      }
    }
  }

  /** Resumes the routing into `g` from every live instance above, with `assignment`. */
  #resumeInputs(g: Group, assignment: number[], remove: number[]): void {
    for (const e of this.#plan.edges.filter((x) => x.to === g)) {
      for (const u of this.#live(e.from)) {
        if (!u.dead && !u.done) {
          u.host.post({ t: "resume", edge: e.id, assignment, add: [], remove });
        }
      }
    }
  }

  /** Waits until every instance of `groups` is ready or done: no restart is under way. */
  async #settled(groups: Group[]): Promise<void> {
    const unsettled = () =>
      groups.some((x) => {
        const list = this.#instances.get(x) ?? [];
        for (let i = 0; i < x.parallelism; i++) {
          const inst = list[i];
          if (!inst || inst.done) continue; // done: also one that failed having passed all on
          if (inst.dead || !inst.ready) return true;
        }
        return false;
      });
    await this.#whilst(unsettled);
  }

  /** Waits while `busy()` holds (checked every 5 ms), or until the pipeline ends. */
  async #whilst(busy: () => boolean): Promise<void> {
    while (!this.#ended && busy()) await new Promise((r) => setTimeout(r, 5));
  }

  /**
   * A stage that has begun to flush has emitted what its state held: moving that state now would
   * emit it twice. Nor is there anything to rescale for once all of its input has ended.
   */
  #refuseFinishing(stage: string, g: Group, above: Group[]): void {
    const over = (i: Instance | undefined) =>
      i !== undefined && (i.done || (!i.dead && i.ending === true));
    const ups = above.flatMap((x) => this.#instances.get(x) ?? []);
    if ((this.#instances.get(g) ?? []).some(over) || (ups.length > 0 && ups.every(over))) {
      throw new RangeError(`Cannot scale "${stage}": its input has ended, it is finishing`);
    }
  }

  /**
   * One attempt at a rescale. False when an instance above died before anything changed: the
   * caller tries again once it is back. An instance of the stage that dies later on makes the
   * whole stage restart under the new assignment from its stored state (see `#recover`).
   */
  async #rescale(stage: string, g: Group, n: number): Promise<boolean> {
    const oldN = g.parallelism;
    const ins = this.#plan.edges.filter((e) => e.to === g);
    const outs = this.#plan.edges.filter((e) => e.from === g);
    // 1. Stop routing into the stage and wait until everything sent to it is acked. For a
    //    stateful stage that means held by a stored checkpoint: the backend now has its state.
    const ups = ins.flatMap((e) =>
      this.#live(e.from).filter((u) => !u.done).map((u) => [e, u] as const)
    );
    // Alignment would keep the batches of inputs ahead unacked until the slowest catches up, which
    // the pause holds: the pause would last until an input counts as idle. It is off meanwhile.
    const align = (on: boolean) => {
      if (g.options.align === undefined) return;
      for (const inst of this.#live(g)) inst.host.post({ t: "align", on });
    };
    const resume = (assignment: number[], remove: number[]) => {
      this.#resumeInputs(g, assignment, remove);
      align(true);
    };
    align(false);
    // An instance of the region that dies now would never ack what the pause waits for (its
    // restart waits for the rescale): nothing has changed yet, so the rescale starts again.
    const aborted = new Promise<never>((_, reject) =>
      this.#pauseAbort = () => reject(new Gone("an instance died during the pause"))
    );
    try {
      await Promise.race([
        Promise.all(
          ups.map(([e, u]) => this.#request(u, { t: "pause", edge: e.id, id: ++this.#reqId })),
        ),
        aborted,
      ]);
      this.#refuseFinishing(stage, g, []);
    } catch (error) {
      resume(g.assignment, []);
      if (error instanceof Gone) return this.#ended;
      throw error;
    } finally {
      this.#pauseAbort = undefined;
      aborted.catch(() => {});
    }
    const hashed = g.assignment.length > 0;
    const old = g.assignment;
    const next = hashed ? assignPartitions(this.#o.partitions, n, old) : [];
    g.parallelism = n;
    g.assignment = next;
    const remove: number[] = [];
    for (let i = n; i < oldN; i++) remove.push(i);
    try {
      await this.#move(g, oldN, old, outs);
    } catch (error) {
      if (!(error instanceof Gone)) throw error;
      if (this.#ended) return true;
      await this.#recover(g, oldN, outs);
    }
    // 5. Resume routing with the new map.
    resume(next, remove);
    return true;
  }

  /** Steps 2–4 of a rescale: start, move keyed state, retire. */
  async #move(g: Group, oldN: number, old: number[], outs: GroupEdge[]): Promise<void> {
    const n = g.parallelism;
    const next = g.assignment;
    // 2. Start new instances (scale up).
    for (let i = oldN; i < n; i++) this.#spawn(g, i);
    const list = this.#instances.get(g)!;
    await this.#whilst(() => list.slice(0, n).some((x) => !x.ready && !x.dead));
    // 3. Move keyed state through the state backend: the old owner writes (and drops) the
    //    partitions it gives up, each new owner reads those it gains.
    if (next.length > 0) {
      // A checkpoint under way (its reply may wait for outputs to be acked) must be stored before
      // the moved partitions are, or its older copy of them could overwrite theirs.
      await Promise.all(list.slice(0, oldN).map((x) => x.checkpointing?.catch(() => {})));
      await this.#cpStoring?.catch(() => {});
      for (let a = 0; a < oldN; a++) {
        const moved = old.flatMap((owner, p) => owner === a && next[p] !== a ? [p] : []);
        if (moved.length === 0) continue;
        const id = ++this.#reqId;
        const reply = await this.#request(list[a]!, {
          t: "snapshot",
          id,
          partitions: moved,
          drop: true,
        });
        await this.#store(a, withoutExtra(reply.state ?? {}));
      }
      for (let b = 0; b < n; b++) {
        const gained = next.flatMap((owner, p) => owner === b && old[p] !== b ? [p] : []);
        if (gained.length === 0) continue;
        const state = withoutExtra(await this.#load(g, b, gained));
        await this.#request(list[b]!, {
          t: "restore",
          id: ++this.#reqId,
          state,
          owned: this.#ownedBy(g, b),
        });
      }
    }
    // 4. Retire surplus instances (scale down).
    for (let i = n; i < oldN; i++) {
      const inst = list[i]!;
      if (!inst.dead) {
        const reply = await this.#request(inst, { t: "retire", id: ++this.#reqId });
        if (reply.counters) inst.counters = reply.counters;
        this.#bury(inst);
        this.#remember(inst);
        this.#end(inst);
      }
    }
    this.#retireSlots(g, n);
    this.#dropRetired(g, oldN, outs);
    list.length = n;
    for (const inst of list) inst.owned = this.#ownedBy(g, inst.index);
  }

  /** Tells the stages below that instances `n..oldN-1` of `g` are gone for good. */
  #dropRetired(g: Group, oldN: number, outs: GroupEdge[]): void {
    const list = this.#instances.get(g) ?? [];
    for (let i = g.parallelism; i < oldN; i++) {
      // The retired incarnation's channel only: a later rescale may add slot i back before the
      // stage below gets to this.
      const sender = list[i]?.id;
      for (const e of outs) {
        for (const d of this.#live(e.to)) {
          d.host.post({ t: "dropIn", edge: e.id, from: i, sender });
        }
      }
    }
  }

  /**
   * An instance died in the middle of a rescale. Everything sent to the stage was acked before the
   * move began, so its stored state is complete (what moved so far was stored too): every instance
   * of the stage restarts from it, under the new assignment.
   */
  async #recover(g: Group, oldN: number, outs: GroupEdge[]): Promise<void> {
    const list = this.#instances.get(g)!;
    const all = list.slice(0, Math.max(oldN, g.parallelism)).filter((x) => x !== undefined);
    for (const x of all) {
      if (x.dead) continue;
      this.#bury(x);
      this.#remember(x);
      this.#end(x);
    }
    for (const x of all) {
      await x.ended;
      await x.storing?.catch(() => {});
    }
    await this.#cpStoring?.catch(() => {});
    if (this.#ended) return;
    this.#retireSlots(g, g.parallelism);
    this.#dropRetired(g, oldN, outs);
    list.length = g.parallelism;
    for (let i = 0; i < g.parallelism; i++) {
      const restore = g.options.stateful ? await this.#load(g, i, this.#ownedBy(g, i)) : undefined;
      if (this.#ended) return;
      this.#spawn(g, i, restore);
    }
    await this.#whilst(() => list.some((x) => !x.ready && !x.dead));
  }
}

/** Keyed state only: per-instance extra state and watermarks do not move with partitions. */
function withoutExtra(state: Record<string, StateSnapshot>): Record<string, StateSnapshot> {
  const out: Record<string, StateSnapshot> = {};
  for (const [stage, snap] of Object.entries(state)) out[stage] = { keyed: snap.keyed };
  return out;
}

/** Adds `c` to the counters `map` holds under `key`. */
function addInto<K>(map: Map<K, StageCounters>, key: K, c: StageCounters): void {
  const prev = map.get(key);
  map.set(key, prev ? sum([prev, c]) : c);
}

/** `a` less `b`, counts only (a later reading of the same counters less an earlier one). */
function minus(a: StageCounters, b: StageCounters): StageCounters {
  return {
    in: Math.max(0, a.in - b.in),
    out: Math.max(0, a.out - b.out),
    failed: Math.max(0, a.failed - b.failed),
    deadLettered: Math.max(0, a.deadLettered - b.deadLettered),
    mailbox: 0,
    credits: 0,
    batches: Math.max(0, a.batches - b.batches),
    latencyMs: Math.max(0, a.latencyMs - b.latencyMs),
    latency: a.latency.map((n, i) => Math.max(0, n - (b.latency[i] ?? 0))),
  };
}

/** Adds counters up (mailbox and credits are levels, summed too). */
export function sum(list: StageCounters[]): StageCounters {
  const total: StageCounters = {
    in: 0,
    out: 0,
    failed: 0,
    deadLettered: 0,
    mailbox: 0,
    credits: 0,
    batches: 0,
    latencyMs: 0,
    latency: [],
  };
  for (const c of list) {
    total.in += c.in;
    total.out += c.out;
    total.failed += c.failed;
    total.deadLettered += c.deadLettered;
    total.mailbox += c.mailbox;
    total.credits += c.credits;
    total.batches += c.batches;
    total.latencyMs += c.latencyMs;
    c.latency.forEach((v, i) => total.latency[i] = (total.latency[i] ?? 0) + v);
  }
  return total;
}
