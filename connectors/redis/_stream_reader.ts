// One consumer of a Redis stream consumer group, pull by pull: first its own pending entries
// (left by an earlier run), then stale entries of dead consumers (XAUTOCLAIM), then new ones
// (a blocking XREADGROUP on its own connection, cut short by CLIENT UNBLOCK when the pull is
// aborted). Entries are acknowledged (XACK) only in `ack`, once the pipeline finished them.
import type { StreamRecord } from "../../actors/record.ts";
import type { PullOptions, SourceBatch, StageContext } from "../../actors/stage.ts";
import type { Redis } from "../../stores/redis/_deps.ts";
import { isTransient } from "./_client.ts";
import { decodeEntry, type Entry, replyEntries } from "./_entries.ts";
import { sleep } from "../../actors/_sleep.ts";

/** Settings of a {@linkcode StreamReader}. */
export interface StreamReaderOptions {
  stream: string;
  group: string;
  consumer: string;
  count: number;
  blockMs: number;
  claimIdleMs?: number;
}

/** The position of a pull: the ids to acknowledge. */
export interface StreamPosition {
  ids: string[];
}

/** Reads a stream as one consumer of a group. */
export class StreamReader {
  readonly #o: StreamReaderOptions;
  readonly #cmd: Redis;
  readonly #reader: Redis;
  readonly #inflight = new Set<string>();
  #readerId = "";
  #pendingFrom: string | undefined = "0";
  #claimFrom = "0-0";
  #claimedAt = 0;
  #failures = 0;
  #closed: Promise<void> | undefined;

  /** `cmd` serves short commands and acks; `reader` only the blocking reads. */
  constructor(options: StreamReaderOptions, cmd: Redis, reader: Redis) {
    this.#o = options;
    this.#cmd = cmd;
    this.#reader = reader;
  }

  /** Creates the group (and stream) when missing and learns the reader's client id. */
  async open(start: string): Promise<void> {
    const { stream, group } = this.#o;
    try {
      await this.#cmd.call("XGROUP", "CREATE", stream, group, start, "MKSTREAM");
    } catch (error) {
      if (!/BUSYGROUP/.test(String((error as Error).message))) throw error;
    }
    this.#readerId = String(await this.#reader.call("CLIENT", "ID"));
    this.#reader.on("ready", () => {
      this.#reader.call("CLIENT", "ID").then((id) => this.#readerId = String(id), () => {});
    });
  }

  #batch(
    entries: Entry[],
    deleted: string[],
    ctx: StageContext<unknown>,
  ): SourceBatch<unknown> {
    const records: StreamRecord<unknown>[] = [];
    const ids: string[] = [];
    for (const entry of entries) {
      if (this.#inflight.has(entry[0])) continue; // claimed back from ourselves: still in flight
      this.#inflight.add(entry[0]);
      ids.push(entry[0]);
      const decoded = decodeEntry(this.#o.stream, entry);
      if ("reason" in decoded) ctx.deadLetter(decoded.record, decoded.reason);
      else records.push(decoded.record);
    }
    // Entries XAUTOCLAIM found deleted are gone from the group already: report them.
    for (const id of deleted) {
      const { record, reason } = decodeEntry(this.#o.stream, [id, null]) as {
        record: StreamRecord<unknown>;
        reason: Error;
      };
      ctx.deadLetter(record, reason);
    }
    return ids.length === 0 ? { records } : { records, position: { ids } };
  }

  /** The next entries: own pending ones first, then claimed, then new (waiting ≤ blockMs). */
  async pull(
    { max, signal }: PullOptions,
    ctx: StageContext<unknown>,
  ): Promise<SourceBatch<unknown>> {
    const { stream, group, consumer } = this.#o;
    const count = String(Math.max(1, Math.min(max, this.#o.count)));
    try {
      if (this.#pendingFrom !== undefined) {
        const reply = await this.#cmd.call(
          "XREADGROUP",
          "GROUP",
          group,
          consumer,
          "COUNT",
          count,
          "STREAMS",
          stream,
          this.#pendingFrom,
        );
        const entries = replyEntries(reply);
        this.#pendingFrom = entries.length === 0 ? undefined : entries[entries.length - 1]![0];
        if (entries.length > 0) return this.#ok(this.#batch(entries, [], ctx));
      }
      const idle = this.#o.claimIdleMs;
      if (
        idle !== undefined && (this.#claimFrom !== "0-0" || Date.now() - this.#claimedAt >= idle)
      ) {
        const reply = await this.#cmd.call(
          "XAUTOCLAIM",
          stream,
          group,
          consumer,
          String(idle),
          this.#claimFrom,
          "COUNT",
          count,
        ) as [string, Entry[], string[]?];
        this.#claimFrom = reply[0];
        if (this.#claimFrom === "0-0") this.#claimedAt = Date.now();
        const batch = this.#batch(reply[1] ?? [], reply[2] ?? [], ctx);
        if (batch.position) return this.#ok(batch);
      }
      return this.#ok(this.#batch(replyEntries(await this.#readNew(count, signal)), [], ctx));
    } catch (error) {
      if (!isTransient(error)) throw error;
      // Server down or restarting: wait (abortable) and let the runtime pull again.
      this.#failures++;
      await sleep(Math.min(2000, 50 * 2 ** Math.min(this.#failures, 6)), signal);
      return { records: [] };
    }
  }

  #ok(batch: SourceBatch<unknown>): SourceBatch<unknown> {
    this.#failures = 0;
    return batch;
  }

  async #readNew(count: string, signal: AbortSignal): Promise<unknown> {
    if (signal.aborted) return null;
    const { stream, group, consumer, blockMs } = this.#o;
    const read = this.#reader.call(
      "XREADGROUP",
      "GROUP",
      group,
      consumer,
      "COUNT",
      count,
      "BLOCK",
      String(blockMs),
      "STREAMS",
      stream,
      ">",
    );
    const unblock = () => {
      this.#cmd.call("CLIENT", "UNBLOCK", this.#readerId).catch(() => {});
    };
    signal.addEventListener("abort", unblock, { once: true });
    try {
      return await read;
    } finally {
      signal.removeEventListener("abort", unblock);
    }
  }

  /** Acknowledges the entries of a finished pull (retrying a lost connection a few times). */
  async ack(position: StreamPosition): Promise<void> {
    for (let attempt = 1;; attempt++) {
      try {
        await this.#cmd.xack(this.#o.stream, this.#o.group, ...position.ids);
        break;
      } catch (error) {
        if (!isTransient(error) || attempt >= 5) throw error;
        await sleep(100 * 2 ** attempt, new AbortController().signal);
      }
    }
    for (const id of position.ids) this.#inflight.delete(id);
  }

  /** Closes both connections (once); a blocking read in progress is cut off. */
  close(): Promise<void> {
    return this.#closed ??= (async () => {
      this.#reader.disconnect();
      await this.#cmd.quit().catch(() => this.#cmd.disconnect());
    })();
  }
}
