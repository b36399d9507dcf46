// The bounded buffer between kafkajs's `eachBatch` and the source's `pull`: fetched batches in
// arrival order (so in offset order per partition), how many messages they still hold, and the
// partitions paused because a batch found the buffer full.
import type { kafkajs } from "./_deps.ts";

/** One fetched kafkajs batch of one partition, consumed from `at` on. */
export interface Chunk {
  key: string;
  topic: string;
  partition: number;
  /** Assignment epoch of the partition when fetched; stale chunks are dropped. */
  epoch: number;
  messages: kafkajs.KafkaMessage[];
  at: number;
}

/** FIFO of fetched batches plus the set of partitions paused for lack of room. */
export class MessageBuffer {
  readonly #queue: Chunk[] = [];
  readonly #paused = new Map<string, { topic: string; partition: number }>();
  #messages = 0;

  /** Batches held (a partly consumed one counts). */
  get batches(): number {
    return this.#queue.length;
  }

  /** Messages not handed out yet. */
  get messages(): number {
    return this.#messages;
  }

  /** Paused partitions as `topic:partition`. */
  get paused(): string[] {
    return [...this.#paused.keys()];
  }

  /** Appends a fetched batch. */
  push(chunk: Chunk): void {
    this.#queue.push(chunk);
    this.#messages += chunk.messages.length - chunk.at;
  }

  /** The oldest batch, if any. */
  head(): Chunk | undefined {
    return this.#queue[0];
  }

  /** Takes the next message of the oldest batch. */
  next(chunk: Chunk): kafkajs.KafkaMessage {
    this.#messages--;
    return chunk.messages[chunk.at++]!;
  }

  /** Drops the oldest batch with whatever it still holds. */
  shift(): void {
    const chunk = this.#queue.shift();
    if (chunk) this.#messages -= chunk.messages.length - chunk.at;
  }

  /** Drops everything (rebalance, close). */
  clear(): void {
    this.#queue.length = 0;
    this.#messages = 0;
  }

  /** Remembers that a partition was paused. */
  markPaused(key: string, topic: string, partition: number): void {
    this.#paused.set(key, { topic, partition });
  }

  /** The paused partitions grouped by topic, forgetting them (the caller resumes them). */
  takePaused(): { topic: string; partitions: number[] }[] {
    const byTopic = new Map<string, number[]>();
    for (const { topic, partition } of this.#paused.values()) {
      byTopic.set(topic, [...byTopic.get(topic) ?? [], partition]);
    }
    this.#paused.clear();
    return [...byTopic].map(([topic, partitions]) => ({ topic, partitions }));
  }
}
