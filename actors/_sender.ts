// The sending half of a channel: batches records, spends credits, keeps batches until acked and
// replays them, in order, over a new port when the receiver is restarted.
//
// A credit is a free slot in the receiver's mailbox: it comes back when the receiver has processed
// the batch (`f`, or `a` if it is done then too). The ack comes once everything derived from the
// batch is acked below, or, into a stateful stage, once a checkpoint holds it; meanwhile the sender
// keeps the batch, packed, for a replay: at most RETAIN × capacity batches.
import type { StreamRecord } from "./record.ts";
import type { ToReceiver, ToSender } from "./_protocol.ts";
import type { Token } from "./_token.ts";
import { after } from "./_timer.ts";
import { type Column, Packer, unpack } from "./_wire.ts";
import { formatPath } from "./_config.ts";
import { cloneFailure, unsendable } from "./_clone.ts";

/**
 * Takes the records of a batch that structured clone refused (a function or a symbol in a value),
 * with the reason for each and the tokens of the batch they came in: they are dead-lettered.
 */
export type Rejector = (records: unknown[], reasons: string[], tokens: Token[]) => void;

/** Batches a sender keeps for a replay, as a multiple of the receiver's capacity. */
export const RETAIN = 4;

interface Pending {
  seq: number;
  /** The records, until the batch is first sent; from then on `packed` holds them. */
  records: StreamRecord<unknown>[] | undefined;
  /** The batch as sent, kept for a replay: far fewer objects to hold than the records. */
  packed: Column | undefined;
  size: number;
  tokens: Token[];
  /** A watermark that follows this batch's records. */
  wm?: number;
  /** A checkpoint barrier that follows them (and the watermark): sent once, never replayed. */
  cp?: number;
  /** The last barrier sent on this channel before the batch was sealed (0: none). */
  after: number;
}

/** Sender side of one edge to one downstream instance. */
export class Sender {
  #port: MessagePort;
  readonly #capacity: number;
  readonly #batchSize: number;
  readonly #lingerMs: number;
  readonly #packer = new Packer();
  #seq = 0;
  #open: StreamRecord<unknown>[] = [];
  #openTokens = new Set<Token>();
  #lastToken: Token | undefined;
  /** Cancels the linger timer of the open batch, while one runs. */
  #lingerTimer: (() => void) | undefined;
  /** Sealed batches waiting for a credit. */
  readonly #queue: Pending[] = [];
  /** Sent, not yet acked: seq → batch. */
  readonly #unacked = new Map<number, Pending>();
  /** Of those, the ones the receiver has processed: they hold no credit, only a place to replay. */
  readonly #processed = new Set<number>();
  /** Of those, the ones a restarted receiver has not been sent again yet, in order. */
  #replay: Pending[] = [];
  /** What a restarted receiver gets once the replay is through (the watermark, the end). */
  #afterReplay: ToReceiver[] = [];
  /** The receiver on the port has said goodbye (`e`): every ack it sent is in. */
  #byeSaid = false;
  /** Ports of receivers replaced before they said goodbye: the replay waits for them. */
  readonly #leaving = new Set<MessagePort>();
  #waiters: (() => void)[] = [];
  #idleWaiters: (() => void)[] = [];
  #lastWatermark = -Infinity;
  /** The highest watermark posted so far (alone or riding on a batch): what a replay may repeat. */
  #sentWatermark = -Infinity;
  #wmPending = false;
  /** Queued batches that carry a barrier: the retention bound is lifted until they are sent. */
  #barriers = 0;
  /** The task has a barrier to pass on (see `lift`). */
  #lifted = false;
  /** The last checkpoint barrier sent on this channel (0: none). */
  #lastBarrier = 0;
  /** Barriers sent on this channel and not yet committed (or passed by a later commit). */
  readonly #barriersSent = new Set<number>();
  #ended = false;
  #closed = false;
  /** Count of records sent (not counting replays). */
  sent = 0;
  /** What the linger timer could not send: thrown at the next push or wait. */
  #broken: unknown;

  /** Where records that cannot cross go; without one, the failed post throws. */
  readonly #reject: Rejector | undefined;

  constructor(
    port: MessagePort,
    capacity: number,
    batchSize: number,
    lingerMs: number,
    reject?: Rejector,
  ) {
    this.#reject = reject;
    this.#port = port;
    this.#capacity = capacity;
    this.#batchSize = batchSize;
    this.#lingerMs = lingerMs;
    this.#listen();
  }

  #listen(): void {
    this.#port.onmessage = (e: MessageEvent<ToSender>) => {
      // A credit back sends what waited for it: what that post throws must not escape a message
      // handler (it would end the worker, or the whole process inline).
      try {
        const m = e.data;
        if (m.t === "a") this.ack(m.seq);
        else if (m.t === "f") this.#processedBy(m.seq);
        else this.#byeSaid = true;
      } catch (error) {
        this.#break(error);
      }
    };
  }

  /** The receiver processed batch `seq` and holds it for a checkpoint: its credit comes back. */
  #processedBy(seq: number): void {
    if (!this.#unacked.has(seq) || this.#processed.has(seq)) return;
    if (this.#replay.some((b) => b.seq === seq)) return; // not sent to this incarnation yet
    this.#processed.add(seq);
    this.#pump();
  }

  /**
   * Batch `seq` is done downstream: the receiver acked it, or the supervisor did for it (a stored
   * checkpoint holds it). A second ack of a batch is ignored.
   */
  ack(seq: number): void {
    const batch = this.#unacked.get(seq);
    if (!batch) return; // acked already, or an ack from before a replay
    this.#unacked.delete(seq);
    this.#processed.delete(seq);
    if (this.#replay.length > 0) this.#replay = this.#replay.filter((b) => b.seq !== seq);
    for (const token of batch.tokens) token.release();
    this.#pump();
    this.#idle();
  }

  /**
   * Aligned checkpoint `id` is stored, and what this channel carries ends up in it (in the state of
   * a stateful stage or a sink below, through stateless ones): every batch sent ahead of barrier
   * `id` is done. The receiver's acks would say so too, but a stateless receiver that dies before
   * it hears of the commit never sends them, and its replacement would be sent that input again:
   * counted twice by the stateful stage below, which is restored to this very checkpoint.
   */
  commit(id: number): void {
    // Not sent here (a channel opened since, say): nothing known to be ahead of it. (A later
    // barrier may have been sent already: the commit can come after it.)
    const sent = this.#barriersSent.has(id);
    for (const b of this.#barriersSent) if (b <= id) this.#barriersSent.delete(b);
    if (!sent) return;
    for (const batch of [...this.#unacked.values()]) if (batch.after < id) this.ack(batch.seq);
  }

  /** Wakes those waiting for `drained()` once nothing is queued or unacked. */
  #idle(): void {
    if (this.#unacked.size === 0 && this.#queue.length === 0) {
      const waiters = this.#idleWaiters;
      this.#idleWaiters = [];
      for (const w of waiters) w();
    }
  }

  /** Free places in the receiver's mailbox. */
  #free(): number {
    const inMailbox = this.#unacked.size - this.#processed.size - this.#replay.length;
    return this.#capacity - inMailbox;
  }

  /** Free credits: batches the receiver can still take (and this sender can still keep). */
  get credits(): number {
    return Math.max(0, Math.min(this.#free(), RETAIN * this.#capacity - this.#unacked.size));
  }

  /**
   * Batches that may be sent now: as many as the mailbox has room for, and as the retention bound
   * allows, unless a checkpoint barrier waits behind them here or in the task. A stateful stage
   * below holds its acks until a checkpoint completes, which needs the barrier: within the bound,
   * the batches ahead of it could wait for those acks for ever. (They are bounded all the same:
   * by what was pulled before the barrier.)
   */
  #room(): number {
    if (this.#barriers > 0 || this.#lifted) return this.#free();
    return Math.min(this.#free(), RETAIN * this.#capacity - this.#unacked.size);
  }

  /**
   * While on, the retention bound is lifted (see `#room`): the task has a checkpoint barrier to
   * pass on, behind what it still has to send.
   */
  lift(on: boolean): void {
    this.#lifted = on;
    if (on) this.#pump();
  }

  /** Sends checkpoint barrier `id` behind everything pushed so far (sealing the open batch). */
  barrier(id: number): void {
    if (this.#closed) return;
    this.seal();
    this.#lastBarrier = id;
    this.#barriersSent.add(id);
    const last = this.#queue.at(-1);
    if (last) {
      if (last.cp === undefined) this.#barriers++;
      last.cp = id;
      this.#pump();
    } else if (this.#replaying) this.#afterReplay.push({ t: "c", id });
    else this.#post({ t: "c", id });
  }

  /** Nothing open, queued or unacked. */
  get idle(): boolean {
    return this.#open.length === 0 && this.#queue.length === 0 && this.#unacked.size === 0;
  }

  /**
   * Whether batches that no checkpoint barrier sent here covers fill half the retention bound.
   * Where a stateful stage is below, their acks wait for a checkpoint that covers them: asked for
   * now, it is under way before this sender runs out of room (see `Task#askAhead`).
   */
  get uncoveredHalf(): boolean {
    let n = 0;
    for (const b of this.#queue) if (b.after === this.#lastBarrier) n++;
    for (const b of this.#unacked.values()) if (b.after === this.#lastBarrier) n++;
    return 2 * n >= RETAIN * this.#capacity;
  }

  /** Batches sent and not yet acked. */
  get inFlight(): number {
    return this.#unacked.size;
  }

  /** Records held: open, queued and unacked. */
  get held(): number {
    let n = this.#open.length;
    for (const b of this.#queue) n += b.size;
    for (const b of this.#unacked.values()) n += b.size;
    return n;
  }

  /** Adds a record to the open batch; the token is held until the batch carrying it is acked. */
  push(record: StreamRecord<unknown>, token: Token): void {
    // A killed task's hooks may still finish: what they emit goes nowhere (its input is replayed).
    if (this.#closed) return;
    if (this.#broken !== undefined) throw this.#broken;
    // A watermark pending on the open batch rides at its end. A record behind it in time (late)
    // must stay behind it, so it starts the next batch; one at or past it may go before it, as
    // it changes nothing the watermark decides: batches stay full where watermarks come often
    // (one per file chunk, say).
    if (this.#wmPending && record.ts < this.#lastWatermark) this.seal();
    this.#open.push(record);
    if (token !== this.#lastToken && !this.#openTokens.has(token)) {
      this.#openTokens.add(token);
      token.hold();
    }
    this.#lastToken = token;
    if (this.#open.length >= this.#batchSize) this.seal();
    else if (this.#lingerTimer === undefined) {
      this.#lingerTimer = after(this.#lingerMs, () => {
        this.#lingerTimer = undefined;
        // Out of the task's flow: what cannot be sent (a record structured clone refuses) fails
        // the task at its next push or wait, not the process.
        try {
          this.seal();
        } catch (error) {
          this.#break(error);
        }
      });
    }
  }

  /** Keeps what a send outside any caller threw: the next push or wait throws it. */
  #break(error: unknown): void {
    this.#broken ??= error;
    for (const w of this.#waiters.splice(0)) w();
  }

  /** Closes the open batch and sends what credits allow. */
  seal(): void {
    if (this.#lingerTimer !== undefined) {
      this.#lingerTimer();
      this.#lingerTimer = undefined;
    }
    if (this.#open.length > 0) {
      const wm = this.#wmPending ? this.#lastWatermark : undefined;
      this.#wmPending = false;
      this.#queue.push({
        seq: ++this.#seq,
        records: this.#open,
        packed: undefined,
        size: this.#open.length,
        tokens: [...this.#openTokens],
        wm,
        after: this.#lastBarrier,
      });
      this.#open = [];
      this.#openTokens = new Set();
      this.#lastToken = undefined;
    }
    this.#pump();
  }

  /** A restarted receiver has yet to get what it lost (or the replay waits for a goodbye). */
  get #replaying(): boolean {
    return this.#replay.length > 0 || this.#leaving.size > 0;
  }

  #pump(): void {
    // A restarted receiver gets what it lost first, in order, as its mailbox has room.
    while (this.#replay.length > 0 && this.#free() > 0) {
      this.#send(this.#replay.shift()!);
    }
    if (!this.#replaying) { for (const m of this.#afterReplay.splice(0)) this.#post(m); }
    while (!this.#replaying && this.#queue.length > 0 && this.#room() > 0) {
      const batch = this.#queue.shift()!;
      if (batch.cp !== undefined) this.#barriers--;
      this.#unacked.set(batch.seq, batch);
      this.sent += batch.size;
      if (batch.wm !== undefined) this.#sentWatermark = Math.max(this.#sentWatermark, batch.wm);
      this.#send(batch);
    }
    if (this.#queue.length === 0 && !this.#replaying) {
      const waiters = this.#waiters;
      this.#waiters = [];
      for (const w of waiters) w();
    }
  }

  #send(batch: Pending): void {
    batch.packed ??= this.#packer.pack(batch.records!);
    try {
      this.#post({ t: "b", seq: batch.seq, records: batch.packed, wm: batch.wm, cp: batch.cp });
      batch.records = undefined;
      batch.cp = undefined;
    } catch (error) {
      // A record structured clone refuses, or one whose getter throws: taken out, the rest sent.
      if (!this.#reject) throw error;
      this.#sendCloneable(batch, error);
    }
  }

  /**
   * Posting the batch threw: the records structured clone refuses are taken out and rejected (to be
   * dead-lettered), and the rest is sent under the same sequence number. A batch left empty is
   * acked at once.
   */
  #sendCloneable(batch: Pending, error: unknown): void {
    const good: StreamRecord<unknown>[] = [];
    const bad: unknown[] = [];
    const reasons: string[] = [];
    // The records themselves (not copies): the same one refused on two edges is one dead letter.
    const records = batch.records ?? unpack(batch.packed!) as StreamRecord<unknown>[];
    batch.records = undefined;
    for (const record of records) {
      const stuck = unsendable(record) ?? cloneFailure(record);
      if (stuck === undefined) good.push(record);
      else {
        bad.push(record);
        reasons.push(
          `Cannot send record to the next stage: it could not be cloned ` +
            `(${formatPath("record", stuck.path)}: ${stuck.what})`,
        );
      }
    }
    if (bad.length === 0) throw error;
    this.sent -= bad.length;
    batch.size = good.length;
    batch.packed = this.#packer.pack(good);
    this.#reject!(bad, reasons, batch.tokens);
    const cp = batch.cp;
    batch.cp = undefined;
    if (good.length > 0) {
      this.#post({ t: "b", seq: batch.seq, records: batch.packed, wm: batch.wm, cp });
      return;
    }
    // Nothing left to send: done here, after the loop that is sending. A watermark or a barrier
    // it carried goes on alone.
    if (batch.wm !== undefined) this.#post({ t: "w", wm: batch.wm });
    if (cp !== undefined) this.#post({ t: "c", id: cp });
    queueMicrotask(() => this.ack(batch.seq));
  }

  #post(message: ToReceiver): void {
    if (this.#closed) return;
    this.#port.postMessage(message);
  }

  /**
   * Resolves once no sealed batch waits for credit, nor a replay for room (the open batch may
   * still linger).
   */
  ready(): Promise<void> {
    if (this.#broken !== undefined) return Promise.reject(this.#broken);
    if (this.#queue.length === 0 && !this.#replaying) return Promise.resolve();
    return new Promise((resolve, reject) =>
      this.#waiters.push(() => this.#broken !== undefined ? reject(this.#broken) : resolve())
    );
  }

  /** Forwards a watermark, in order behind the data already sent. */
  watermark(wm: number): void {
    if (wm <= this.#lastWatermark) return;
    this.#lastWatermark = wm;
    // Watermarks never overtake records, nor fall behind later ones: one behind data rides at the
    // end of that data's batch (sealed by the linger timer or by the next record pushed).
    if (this.#open.length > 0) this.#wmPending = true;
    else if (this.#queue.length > 0) this.#queue[this.#queue.length - 1]!.wm = wm;
    else if (this.#replaying) {
      this.#sentWatermark = wm;
      this.#afterReplay.push({ t: "w", wm });
    } else {
      this.#sentWatermark = wm;
      this.#post({ t: "w", wm });
    }
  }

  /** Ends the stream after everything queued. */
  end(): void {
    this.#ended = true;
    this.seal();
    void this.ready().then(() => this.#post({ t: "eos" }));
  }

  /** Resolves when every batch sent has been acked. */
  async drained(): Promise<void> {
    this.seal();
    if (this.#queue.length === 0 && this.#unacked.size === 0) return;
    await new Promise<void>((resolve) => this.#idleWaiters.push(resolve));
  }

  /**
   * Switches to a new port (receiver restarted) and replays every unacked batch in order. With
   * `bye` (the old receiver was killed, saying goodbye as it closed), the replay waits for the old
   * port's goodbye: acks sent just before it, still on their way, would be lost, and the batches
   * they ack replayed (counted twice by a stateful stage below whose checkpoint holds them).
   */
  reconnect(port: MessagePort, bye = false): void {
    const old = this.#port;
    if (bye && !this.#byeSaid) {
      this.#leaving.add(old);
      old.onmessage = (e: MessageEvent<ToSender>) => {
        if (e.data.t === "a") this.ack(e.data.seq);
        else if (e.data.t === "e") {
          this.#hangUp(old);
          if (this.#leaving.size === 0) this.#replayAll();
        }
      };
    } else this.#hangUp(old);
    this.#port = port;
    this.#byeSaid = false;
    this.#listen();
    // Processed or not, the new incarnation has none of them (a restored checkpoint holds none).
    this.#processed.clear();
    this.#replay = [];
    // Then only the watermark already sent: a later one rides on the batches still queued or open,
    // and sent now it would overtake them (their records would arrive late).
    this.#afterReplay = [];
    if (this.#sentWatermark > -Infinity) {
      this.#afterReplay.push({ t: "w", wm: this.#sentWatermark });
    }
    if (this.#ended && this.#queue.length === 0) this.#afterReplay.push({ t: "eos" });
    if (this.#leaving.size === 0) this.#replayAll();
  }

  /** Sends every unacked batch again, in order, no more at a time than the mailbox holds. */
  #replayAll(): void {
    this.#replay = [...this.#unacked.values()].sort((a, b) => a.seq - b.seq);
    this.#pump();
  }

  /** Stops listening to a port and closes it. */
  #hangUp(port: MessagePort): void {
    this.#leaving.delete(port);
    port.onmessage = null;
    port.close();
  }

  /**
   * The receiver is gone, having passed on everything it got: every batch kept for it counts as
   * acked, and whatever is still queued or open is dropped with it (the stream ended before it).
   */
  settle(): void {
    this.close();
    for (const batch of this.#queue.splice(0)) for (const token of batch.tokens) token.release();
    this.#barriers = 0;
    for (const token of this.#openTokens) token.release();
    this.#open = [];
    this.#openTokens.clear();
    this.#lastToken = undefined;
    this.#replay = [];
    this.#afterReplay = [];
    for (const seq of [...this.#unacked.keys()]) this.ack(seq);
    this.#pump();
    this.#idle();
  }

  /** Stops listening and closes the port (and those of replaced receivers not yet gone). */
  close(): void {
    this.#closed = true;
    this.#lingerTimer?.();
    for (const port of [...this.#leaving, this.#port]) this.#hangUp(port);
  }
}
