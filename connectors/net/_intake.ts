// The HTTP source's intake: requests wait here, bounded, until a pull takes their records.
// Each request learns its outcome: taken by a pull, processed (acked), or refused (no credit).
import type { StreamRecord } from "../../actors/record.ts";

/** What a waiting request is told. */
export type Outcome = "accepted" | "processed" | "busy" | "closed";

interface Waiting {
  records: StreamRecord<unknown>[];
  taken: boolean;
  settle(outcome: Outcome): void;
}

/** A bounded queue of requests between the HTTP handler and `pull`. */
export class Intake {
  readonly #capacity: number;
  readonly #queue: Waiting[] = [];
  #queued = 0;
  #wake: (() => void) | undefined;
  #closed = false;
  /** Requests taken by a pull, by pull sequence, waiting for their ack (`processed` mode). */
  readonly #unacked = new Map<number, Waiting[]>();

  constructor(capacity: number) {
    this.#capacity = capacity;
  }

  /** Whether a request of `n` records would fit now. */
  fits(n: number): boolean {
    return !this.#closed && (this.#queued === 0 || this.#queued + n <= this.#capacity);
  }

  /** Queues records; resolves with the outcome, or `"busy"` when not taken within `timeoutMs`. */
  offer(records: StreamRecord<unknown>[], timeoutMs: number): Promise<Outcome> {
    if (this.#closed) return Promise.resolve("closed");
    if (!this.fits(records.length)) return Promise.resolve("busy");
    return new Promise((resolve) => {
      const item: Waiting = {
        records,
        taken: false,
        settle: (outcome) => {
          clearTimeout(timer);
          resolve(outcome);
        },
      };
      const timer = setTimeout(() => {
        if (item.taken) return; // taken meanwhile: its outcome comes from the pipeline
        this.#remove(item);
        resolve("busy");
      }, timeoutMs);
      this.#queue.push(item);
      this.#queued += records.length;
      this.#wake?.();
    });
  }

  #remove(item: Waiting): void {
    const at = this.#queue.indexOf(item);
    if (at >= 0) {
      this.#queue.splice(at, 1);
      this.#queued -= item.records.length;
    }
  }

  /** Resolves when a request waits, after `ms` at most, or when `signal` aborts. */
  async waitForWork(ms: number, signal: AbortSignal): Promise<void> {
    if (this.#queue.length > 0 || this.#closed || signal.aborted) return;
    await new Promise<void>((resolve) => {
      const done = () => {
        clearTimeout(timer);
        signal.removeEventListener("abort", done);
        this.#wake = undefined;
        resolve();
      };
      const timer = setTimeout(done, ms);
      signal.addEventListener("abort", done, { once: true });
      this.#wake = done;
    });
  }

  /**
   * Takes whole requests, up to `max` records (at least one request). With `ackSeq`, their
   * outcome waits for {@linkcode ack} of that sequence; else they are told `accepted` now.
   */
  take(max: number, ackSeq?: number): StreamRecord<unknown>[] {
    const records: StreamRecord<unknown>[] = [];
    const taken: Waiting[] = [];
    while (this.#queue.length > 0) {
      const next = this.#queue[0]!;
      if (records.length > 0 && records.length + next.records.length > max) break;
      this.#queue.shift();
      this.#queued -= next.records.length;
      next.taken = true;
      taken.push(next);
      for (const r of next.records) records.push(r);
    }
    if (ackSeq === undefined) { for (const w of taken) w.settle("accepted"); }
    else if (taken.length > 0) this.#unacked.set(ackSeq, taken);
    return records;
  }

  /** The records of pull `seq` were processed end to end. */
  ack(seq: number): void {
    for (const w of this.#unacked.get(seq) ?? []) w.settle("processed");
    this.#unacked.delete(seq);
  }

  /** Refuses everything still waiting. */
  close(): void {
    this.#closed = true;
    for (const w of this.#queue) w.settle("closed");
    for (const list of this.#unacked.values()) for (const w of list) w.settle("closed");
    this.#queue.length = 0;
    this.#unacked.clear();
    this.#queued = 0;
    this.#wake?.();
  }
}
