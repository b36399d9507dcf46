// Commits consumer-group offsets of acked records. Acks arrive in pull order, so the highest acked
// offset of a partition is a contiguous prefix: everything up to it is done. Commits are coalesced
// (one in flight at a time, carrying the latest offsets); a failed commit is retried on the next
// ack, on a timer and at close. Offsets of a partition are only committed while this member owns
// it in the same assignment epoch it was read in.
import { isRebalanceError } from "./_client.ts";

/** A partition's next offset to read, as kafkajs commits it (`offset of last done + 1`). */
export interface PartitionOffset {
  topic: string;
  partition: number;
  offset: string;
}

/** What the committer needs from the consumer. */
export interface CommitTarget {
  commitOffsets(offsets: PartitionOffset[]): Promise<void>;
}

interface Entry {
  topic: string;
  partition: number;
  epoch: number;
  acked: number;
  committed: number;
}

const RETRY_MS = 1000;

/** Coalescing, epoch-checked offset committer. */
export class OffsetCommitter {
  readonly #target: CommitTarget;
  readonly #entries = new Map<string, Entry>();
  #running: Promise<void> | undefined;
  #retry: ReturnType<typeof setTimeout> | undefined;
  #closed = false;
  /** The last commit failure, cleared by a successful commit. */
  lastError: unknown;

  constructor(target: CommitTarget) {
    this.#target = target;
  }

  /** Starts tracking a partition assigned in `epoch` (its acks from older epochs are ignored). */
  assign(key: string, topic: string, partition: number, epoch: number): void {
    const old = this.#entries.get(key);
    if (old?.epoch === epoch) return;
    this.#entries.set(key, { topic, partition, epoch, acked: -1, committed: -1 });
  }

  /** Stops tracking a revoked partition: its later acks are not committed. */
  revoke(key: string): void {
    this.#entries.delete(key);
  }

  /** Records that every message of `key` up to `offset` (inclusive) is done. */
  ack(key: string, epoch: number, offset: number): void {
    const e = this.#entries.get(key);
    if (!e || e.epoch !== epoch || offset < e.acked) return;
    e.acked = offset;
    this.schedule();
  }

  /** Offsets committed so far, as `offset of last done + 1` per `topic:partition`. */
  committed(): Map<string, number> {
    const out = new Map<string, number>();
    for (const [key, e] of this.#entries) if (e.committed >= 0) out.set(key, e.committed + 1);
    return out;
  }

  /** Starts a commit unless one is running (that one picks up the new offsets when it ends). */
  schedule(): void {
    if (this.#running || this.#closed) return;
    this.#running = this.#loop().finally(() => (this.#running = undefined));
  }

  async #loop(): Promise<void> {
    for (;;) {
      const due = [...this.#entries.values()].filter((e) => e.acked > e.committed);
      if (due.length === 0) return;
      const sent = due.map((e) => ({ e, acked: e.acked }));
      try {
        await this.#target.commitOffsets(
          sent.map(({ e, acked }) => ({
            topic: e.topic,
            partition: e.partition,
            offset: String(acked + 1),
          })),
        );
        for (const { e, acked } of sent) if (acked > e.committed) e.committed = acked;
        this.lastError = undefined;
      } catch (error) {
        this.lastError = error;
        // During a rebalance the next assignment decides; otherwise try again shortly.
        if (!this.#closed && this.#retry === undefined) {
          this.#retry = setTimeout(() => {
            this.#retry = undefined;
            this.schedule();
          }, isRebalanceError(error) ? RETRY_MS / 4 : RETRY_MS);
        }
        return;
      }
    }
  }

  /** Whether some acked offset is not committed yet. */
  get dirty(): boolean {
    for (const e of this.#entries.values()) if (e.acked > e.committed) return true;
    return false;
  }

  /** Commits what is acked, retrying up to `attempts` times; resolves `false` if it could not. */
  async flush(attempts = 5): Promise<boolean> {
    for (let i = 0; i < attempts; i++) {
      await this.#running;
      if (!this.dirty) return true;
      this.schedule();
      await this.#running;
      if (!this.dirty) return true;
      await new Promise((r) => setTimeout(r, 100 * 2 ** i));
    }
    return !this.dirty;
  }

  /** Stops the retry timer; no commit starts after this. */
  close(): void {
    this.#closed = true;
    clearTimeout(this.#retry);
    this.#retry = undefined;
  }
}
