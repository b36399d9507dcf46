// One running Kafka source instance: a kafkajs consumer in a consumer group whose `eachBatch`
// fills a bounded buffer that `pull` drains. A full buffer pauses the partition whose batch did
// not fit (the batch is left unresolved, so kafkajs fetches it again after `resume`); `pull`
// resumes paused partitions once the buffer is half empty. Offsets are committed by
// `OffsetCommitter` from `ack`s only. Rebalances: see `onRebalancing`, `onGroupJoin` and
// `#drainBeforeRejoin`.
import type { StreamRecord } from "../../actors/record.ts";
import type { PullOptions, SourceBatch, SourceInstance, StageContext } from "../../actors/stage.ts";
import type { kafkajs } from "./_deps.ts";
import { isRebalanceError } from "./_client.ts";
import { OffsetCommitter } from "./_offset_committer.ts";
import { decodeMessage, type KafkaDecoder } from "./_decode.ts";
import { MessageBuffer } from "./_message_buffer.ts";
import type { KafkaSourceStats } from "./kafka_source.ts";

/** Settings the instance needs from the validated source config. */
export interface SourceSettings {
  decoder: KafkaDecoder;
  maxBufferedBatches: number;
  revokeTimeoutMs: number;
  heartbeatIntervalMs: number;
}

interface Part {
  topic: string;
  partition: number;
  epoch: number;
  /** Offset after the last message handed to the pipeline. */
  next?: number;
}

interface Position {
  id: number;
  offsets: { key: string; epoch: number; offset: number }[];
}

const POLL_MS = 100;
const tpKey = (topic: string, partition: number) => `${topic}:${partition}`;

/** The source instance behind `kafkaSource()`; `stats()` is extra, for tests. */
export class KafkaSourceInstance implements SourceInstance<unknown> {
  readonly #consumer: kafkajs.Consumer;
  readonly #s: SourceSettings;
  readonly #committer: OffsetCommitter;
  readonly #parts = new Map<string, Part>();
  readonly #buffer = new MessageBuffer();
  readonly #inflight = new Set<number>();
  #initialOffsets: Map<string, string> | undefined;
  #epochs = 0;
  #pulls = 0;
  #rebalancing = false;
  #closing = false;
  #failure: Error | undefined;
  #wake: (() => void) | undefined;
  #closed: Promise<void> | undefined;

  /**
   * @param consumer A connected consumer, not yet running.
   * @param settings Validated settings.
   * @param initialOffsets Offsets to seek to at the first assignment (`start: earliest|latest`).
   */
  constructor(
    consumer: kafkajs.Consumer,
    settings: SourceSettings,
    initialOffsets?: Map<string, string>,
  ) {
    this.#consumer = consumer;
    this.#s = settings;
    this.#initialOffsets = initialOffsets;
    this.#committer = new OffsetCommitter({
      commitOffsets: (offsets) => consumer.commitOffsets(offsets),
    });
  }

  /** kafkajs `eachBatch`: buffer the batch, or pause its partition when the buffer is full. */
  async eachBatch(payload: kafkajs.EachBatchPayload): Promise<void> {
    const { batch } = payload;
    if (!payload.isRunning() || payload.isStale() || this.#rebalancing || this.#closing) return;
    const key = tpKey(batch.topic, batch.partition);
    const part = this.#parts.get(key);
    const messages = batch.messages;
    if (!part || messages.length === 0) return;
    if (this.#buffer.batches >= this.#s.maxBufferedBatches) {
      payload.pause();
      this.#buffer.markPaused(key, batch.topic, batch.partition);
      return; // not resolved: fetched again from the same offset after resume
    }
    const { topic, partition } = batch;
    this.#buffer.push({ key, topic, partition, epoch: part.epoch, messages, at: 0 });
    payload.resolveOffset(messages[messages.length - 1]!.offset);
    this.#wake?.();
    try {
      await payload.heartbeat();
    } catch (error) {
      if (isRebalanceError(error)) await this.#drainBeforeRejoin(payload.heartbeat);
      throw error;
    }
  }

  /**
   * A rebalance noticed in `eachBatch`: kafkajs rejoins only once we rethrow, so the group waits
   * while records already handed out are acked (bounded by `revokeTimeoutMs`) and committed.
   */
  async #drainBeforeRejoin(heartbeat: () => Promise<void>): Promise<void> {
    this.onRebalancing();
    const deadline = Date.now() + this.#s.revokeTimeoutMs;
    let beat = Date.now();
    while (this.#inflight.size > 0 && Date.now() < deadline && !this.#closing) {
      await new Promise((r) => setTimeout(r, 10));
      if (Date.now() - beat >= this.#s.heartbeatIntervalMs) {
        beat = Date.now();
        await heartbeat().catch(() => {}); // keeps the session alive while the group waits
      }
    }
    await this.#committer.flush(2);
  }

  /** kafkajs REBALANCING: stop handing out buffered records, they are fetched again later. */
  onRebalancing(): void {
    this.#rebalancing = true;
    this.#buffer.clear();
  }

  /**
   * kafkajs GROUP_JOIN (after every join): revoked partitions are forgotten (their later acks
   * are not committed: the new owner reads them again from the last commit); kept partitions
   * continue right after the last record handed out; new ones start at the committed offset.
   */
  onGroupJoin(assignment: Record<string, number[]>): void {
    this.#buffer.clear();
    this.#rebalancing = false;
    const assigned = new Set<string>();
    for (const [topic, partitions] of Object.entries(assignment)) {
      for (const partition of partitions) {
        const key = tpKey(topic, partition);
        assigned.add(key);
        const part = this.#parts.get(key);
        if (part?.next !== undefined) {
          this.#consumer.seek({ topic, partition, offset: String(part.next) });
        } else if (!part) {
          const epoch = ++this.#epochs;
          this.#parts.set(key, { topic, partition, epoch });
          this.#committer.assign(key, topic, partition, epoch);
          const start = this.#initialOffsets?.get(key);
          if (start !== undefined) this.#consumer.seek({ topic, partition, offset: start });
        }
      }
    }
    this.#initialOffsets = undefined;
    for (const key of [...this.#parts.keys()]) {
      if (assigned.has(key)) continue;
      this.#parts.delete(key);
      this.#committer.revoke(key);
    }
    this.#resume();
    this.#committer.schedule();
  }

  /** kafkajs CRASH without restart: the next pull fails, so the supervisor restarts the stage. */
  onCrash(error: Error): void {
    this.#failure = error;
    this.#wake?.();
  }

  /** Hands over buffered records (waits up to 100 ms for some). */
  async pull(
    { max, signal }: PullOptions,
    ctx: StageContext<unknown>,
  ): Promise<SourceBatch<unknown>> {
    if (this.#failure) throw this.#failure;
    if (this.#buffer.batches === 0 && !signal.aborted) await this.#waitForData(signal);
    if (this.#failure) throw this.#failure;
    const records: StreamRecord<unknown>[] = [];
    const last = new Map<string, { key: string; epoch: number; offset: number }>();
    while (records.length < max && !this.#rebalancing && !this.#closing) {
      const chunk = this.#buffer.head();
      if (!chunk) break;
      const part = this.#parts.get(chunk.key);
      if (part?.epoch === chunk.epoch) {
        while (chunk.at < chunk.messages.length && records.length < max) {
          const message = this.#buffer.next(chunk);
          const decoded = decodeMessage(message, chunk.topic, chunk.partition, this.#s.decoder);
          if ("reason" in decoded) ctx.deadLetter(decoded.record, decoded.reason);
          else records.push(decoded.record);
          const offset = Number(message.offset);
          part.next = offset + 1;
          last.set(chunk.key, { key: chunk.key, epoch: chunk.epoch, offset });
        }
      }
      if (part?.epoch !== chunk.epoch || chunk.at >= chunk.messages.length) this.#buffer.shift();
    }
    if (this.#buffer.batches <= this.#s.maxBufferedBatches / 2) this.#resume();
    if (last.size === 0) return { records };
    const position: Position = { id: ++this.#pulls, offsets: [...last.values()] };
    if (records.length > 0) this.#inflight.add(position.id);
    return { records, position };
  }

  /** Every record of a pull is done: its offsets may be committed. */
  ack(position: unknown): void {
    const p = position as Position;
    this.#inflight.delete(p.id);
    for (const o of p.offsets) this.#committer.ack(o.key, o.epoch, o.offset);
  }

  /** Commits what is acked, then disconnects (leaving the group). */
  close(): Promise<void> {
    this.#closed ??= (async () => {
      this.#closing = true;
      this.#buffer.clear();
      this.#wake?.();
      const committed = await this.#committer.flush();
      this.#committer.close();
      await this.#consumer.disconnect().catch(() => {});
      if (!committed) {
        console.warn(
          `kafkaSource: offsets not committed at close (${
            String((this.#committer.lastError as Error | undefined)?.message ?? "unknown")
          }); records after the last commit will be read again`,
        );
      }
    })();
    return this.#closed;
  }

  /** Disconnects without committing (the stage was killed). */
  abort(): void {
    this.#closing = true;
    this.#committer.close();
    this.#wake?.();
    void this.#consumer.disconnect().catch(() => {});
  }

  /** Internal counts, for tests and diagnostics. */
  stats(): KafkaSourceStats {
    return {
      bufferedBatches: this.#buffer.batches,
      bufferedMessages: this.#buffer.messages,
      paused: this.#buffer.paused,
      assigned: [...this.#parts.keys()],
      inflight: this.#inflight.size,
      committed: Object.fromEntries(this.#committer.committed()),
    };
  }

  #resume(): void {
    const paused = this.#buffer.takePaused();
    if (paused.length > 0) this.#consumer.resume(paused);
  }

  #waitForData(signal: AbortSignal): Promise<void> {
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        signal.removeEventListener("abort", done);
        this.#wake = undefined;
        resolve();
      };
      const timer = setTimeout(done, POLL_MS);
      signal.addEventListener("abort", done, { once: true });
      this.#wake = done;
    });
  }
}
