// The output side of a task: routes records to the senders of each outgoing edge.
import { partitionOf } from "./partitioner.ts";
import type { StreamRecord } from "./record.ts";
import type { RouteSpec, ToSender } from "./_protocol.ts";
import { type Rejector, Sender } from "./_sender.ts";
import type { Token } from "./_token.ts";

/** One outgoing edge of a task: a router over one sender per downstream instance. */
export class OutEdge {
  readonly spec: RouteSpec;
  readonly senders = new Map<number, Sender>();
  readonly #instance: number;
  readonly #partitions: number;
  #assignment: number[];
  #round = 0;
  #paused = false;
  #held: [StreamRecord<unknown>, Token][] = [];
  #resumeWaiters: (() => void)[] = [];
  #lastWatermark = -Infinity;
  /** A watermark that arrived while paused: it waits behind the held records. */
  #heldWatermark = -Infinity;
  /** The end of the stream, asked for while paused: it waits behind the held records too. */
  #heldEnd = false;
  /** The stream has ended: a channel added later (a rescale) is ended at once. */
  #ended = false;
  /** Downstream instances that had everything already: what would go to them is dropped. */
  readonly #finished: Set<number>;
  /** The task has a barrier to pass on: the senders' retention bound is lifted (`Sender.lift`). */
  #lifted = false;

  readonly #reject: Rejector | undefined;

  constructor(spec: RouteSpec, instance: number, partitions: number, reject?: Rejector) {
    this.#reject = reject;
    this.spec = spec;
    this.#instance = instance;
    this.#partitions = partitions;
    this.#assignment = spec.assignment;
    this.#finished = new Set(spec.finished ?? []);
    for (const [to, port] of spec.ports) this.connect(to, port);
    // A channel to come: batches wait in a sender whose port leads nowhere yet (its credit runs
    // out), and are replayed when the real port connects. No one there: goodbye at once.
    for (const to of spec.pending ?? []) {
      const { port1, port2 } = new MessageChannel();
      port2.postMessage({ t: "e" } satisfies ToSender);
      port2.close();
      this.connect(to, port1);
    }
  }

  /**
   * Adds (or replaces, replaying unacked batches) the channel to downstream instance `to`; `bye`:
   * the replaced receiver says goodbye, which the replay waits for (see `Sender.reconnect`).
   */
  connect(to: number, port: MessagePort, bye = false): void {
    const existing = this.senders.get(to);
    if (existing) existing.reconnect(port, bye);
    else {
      const { capacity, batchSize, lingerMs } = this.spec;
      const sender = new Sender(port, capacity, batchSize, lingerMs, this.#reject);
      this.senders.set(to, sender);
      if (this.#lifted) sender.lift(true);
      sender.watermark(this.#lastWatermark);
      if (this.#ended) sender.end();
    }
  }

  #sender(to: number): Sender | undefined {
    const sender = this.senders.get(to);
    if (!sender) {
      if (this.#finished.has(to)) return undefined;
      throw new Error(`Cannot route record: no channel to instance ${to} on ${this.spec.edge}`);
    }
    return sender;
  }

  #route(records: StreamRecord<unknown>[], token: Token): void {
    if (this.spec.mode === "hash") {
      for (const r of records) {
        this.#sender(this.#assignment[partitionOf(r.key ?? "", this.#partitions)] ?? 0)?.push(
          r,
          token,
        );
      }
      return;
    }
    // Forward goes to the same instance; round robin picks one channel per call, so a batch
    // stays whole instead of being dealt out record by record.
    let to = this.#instance;
    if (this.spec.mode === "round") {
      const ids = [...this.senders.keys()];
      // Every instance below has finished (an earlier incarnation sent them everything): what a
      // replay would route is dropped, as for one that finished (`#sender`).
      if (ids.length === 0 && this.#finished.size > 0) return;
      to = ids[this.#round++ % ids.length]!;
    }
    const sender = this.#sender(to);
    if (sender) { for (const r of records) sender.push(r, token); }
  }

  /** Routes records; the token is held until each is acked downstream. */
  push(records: StreamRecord<unknown>[], token: Token): void {
    if (this.#paused) {
      for (const r of records) {
        this.#held.push([r, token]);
        token.hold();
      }
      return;
    }
    this.#route(records, token);
  }

  /** Resolves when no sealed batch waits for credit and the edge is not paused. */
  async ready(): Promise<void> {
    while (this.#paused) await new Promise<void>((r) => this.#resumeWaiters.push(r));
    await Promise.all([...this.senders.values()].map((s) => s.ready()));
  }

  /** Whether a channel's uncovered batches fill half its retention bound (`Sender.uncoveredHalf`). */
  get uncoveredHalf(): boolean {
    for (const s of this.senders.values()) if (s.uncoveredHalf) return true;
    return false;
  }

  /** Seals every open batch. */
  seal(): void {
    for (const s of this.senders.values()) s.seal();
  }

  /** Stops routing and waits until everything sent is acked. */
  async pause(): Promise<void> {
    this.#paused = true;
    await Promise.all([...this.senders.values()].map((s) => s.drained()));
  }

  /** Resumes with a new assignment and channels added or removed, routing what was held. */
  resume(assignment: number[], add: [number, MessagePort][], remove: number[]): void {
    this.#assignment = assignment;
    for (const to of remove) {
      this.senders.get(to)?.close();
      this.senders.delete(to);
    }
    for (const [to, port] of add) this.connect(to, port);
    this.#paused = false;
    const held = this.#held;
    this.#held = [];
    for (const [r, token] of held) {
      this.#route([r], token);
      token.release();
    }
    const wm = this.#heldWatermark;
    this.#heldWatermark = -Infinity;
    if (wm > this.#lastWatermark) this.watermark(wm);
    if (this.#heldEnd) {
      this.#heldEnd = false;
      this.end();
    }
    const waiters = this.#resumeWaiters;
    this.#resumeWaiters = [];
    for (const w of waiters) w();
  }

  /** Sends a watermark on every channel (while paused, after the held records, on resume). */
  watermark(wm: number): void {
    if (this.#paused) {
      // Sent now, it would overtake the held records and make them late downstream.
      this.#heldWatermark = Math.max(this.#heldWatermark, wm);
      return;
    }
    this.#lastWatermark = Math.max(this.#lastWatermark, wm);
    for (const s of this.senders.values()) s.watermark(wm);
  }

  /**
   * Sends checkpoint barrier `id` on every channel, behind what was routed so far. Not while
   * paused: a rescale aborts the checkpoints under way and takes none until it is done.
   */
  barrier(id: number): void {
    if (this.#paused) return;
    for (const s of this.senders.values()) s.barrier(id);
  }

  /** Aligned checkpoint `id` is stored and holds what this edge carried ahead of its barrier. */
  commit(id: number): void {
    for (const s of this.senders.values()) s.commit(id);
  }

  /** Lifts (or restores) the senders' retention bound while the task has a barrier to pass on. */
  lift(on: boolean): void {
    this.#lifted = on;
    for (const s of this.senders.values()) s.lift(on);
  }

  /** Ends every channel (while paused, after the held records, on resume). */
  end(): void {
    if (this.#paused) {
      this.#heldEnd = true;
      return;
    }
    this.#ended = true;
    for (const s of this.senders.values()) s.end();
  }

  /** Resolves when every channel's batches are acked (and none is held by a pause). */
  async drained(): Promise<void> {
    while (this.#paused) await new Promise<void>((r) => this.#resumeWaiters.push(r));
    await Promise.all([...this.senders.values()].map((s) => s.drained()));
  }

  /** Batches `seqs` sent to instance `to` are done (see `Sender.ack`). */
  ack(to: number, seqs: number[]): void {
    const sender = this.senders.get(to);
    for (const seq of seqs) sender?.ack(seq);
  }

  /**
   * Downstream instance `to` is gone after it passed on everything it got: what is kept for it
   * counts as acked, and what a replay would route to it is dropped.
   */
  drop(to: number): void {
    this.senders.get(to)?.settle();
    this.senders.delete(to);
    this.#finished.add(to);
  }

  /** Whether the stream has ended and every batch sent on it was acked. */
  get settled(): boolean {
    if (!this.#ended || this.#paused) return false;
    for (const s of this.senders.values()) if (!s.idle) return false;
    return true;
  }

  /** Free credits summed over channels. */
  get credits(): number {
    let n = 0;
    for (const s of this.senders.values()) n += s.credits;
    return n;
  }

  /** Closes every channel. */
  close(): void {
    for (const s of this.senders.values()) s.close();
  }
}
