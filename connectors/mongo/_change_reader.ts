// Change-stream reads of a collection (`collection.watch()` with `fullDocument: "updateLookup"`):
// inserts, updates and replaces carry the document, deletes a null value; the resume token of the
// last event of a pull is its position.
import type { StreamRecord } from "../../actors/record.ts";
import type { PullOptions, SourceBatch } from "../../actors/stage.ts";
import type {
  ChangeStream,
  ChangeStreamDocument,
  Collection,
  Document,
} from "../../stores/mongo/_deps.ts";
import { fromEjson, idKey, timeOf, toEjson, toPlain } from "./_bson.ts";
import { isTransient } from "./_client.ts";
import { oneLine } from "../../stores/_faults.ts";
import { valueAt } from "./_query_reader.ts";
import { sleep } from "../../actors/_sleep.ts";

/** Where a change reader is: after the event with this resume token (relaxed Extended JSON). */
export interface ChangePosition {
  /** The resume token of the last event handed out. */
  token: unknown;
}

/** Settings of a {@linkcode ChangeReader}. */
export interface ChangeReaderOptions {
  batchSize: number;
  pollMs: number;
  pipeline: Document[];
  tsField?: string;
  headers: Record<string, string>;
  where: string;
  now(): number;
}

type Event = ChangeStreamDocument<Document>;

const CRUD = new Set(["insert", "update", "replace", "delete"]);

/** Reads a collection's change stream, pull by pull. */
export class ChangeReader {
  readonly #collection: Collection<Document>;
  readonly #o: ChangeReaderOptions;
  #stream: ChangeStream<Document, Event> | undefined;
  #stash: Event | undefined;
  #token: unknown;
  #idleUntil = 0;

  constructor(
    collection: Collection<Document>,
    options: ChangeReaderOptions,
    start: ChangePosition | undefined,
  ) {
    this.#collection = collection;
    this.#o = options;
    this.#token = start?.token;
  }

  /** Opens the stream and its server cursor, so every change from now on (or after the token) is seen. */
  async open(): Promise<void> {
    const stream = this.#collection.watch<Document, Event>(this.#o.pipeline, {
      fullDocument: "updateLookup",
      maxAwaitTimeMS: this.#o.pollMs,
      batchSize: this.#o.batchSize,
      ...(this.#token === undefined ? {} : { resumeAfter: fromEjson(this.#token) as Document }),
    });
    try {
      this.#stash = (await stream.tryNext()) ?? undefined;
    } catch (error) {
      await stream.close().catch(() => {});
      if (isTransient(error)) throw error;
      throw new Error(
        `${this.#o.where}: the server does not offer a change stream here (${oneLine(error)})`,
        { cause: error },
      );
    }
    this.#stream = stream;
  }

  #buffered(): number {
    const cursor = (this.#stream as unknown as { cursor?: { bufferedCount?(): number } }).cursor;
    return cursor?.bufferedCount?.() ?? 0;
  }

  #record(event: Event): StreamRecord<Document | null> {
    const doc = "fullDocument" in event ? event.fullDocument ?? undefined : undefined;
    const id = doc?._id ?? ("documentKey" in event ? event.documentKey?._id : undefined);
    const key = id === undefined ? undefined : idKey(id);
    const own = this.#o.tsField !== undefined && doc ? valueAt(doc, this.#o.tsField) : undefined;
    const clusterTime = (event as { clusterTime?: { t?: number } }).clusterTime?.t;
    const ts = timeOf(own) ?? (clusterTime ? clusterTime * 1000 : undefined) ?? this.#o.now();
    const headers = { ...this.#o.headers, "mongo.op": event.operationType };
    return {
      ...(key === undefined ? {} : { key }),
      value: doc ? toPlain(doc) as Document : null,
      ts,
      headers: key === undefined ? headers : { ...headers, "mongo.id": key },
    };
  }

  /** The next events, or an empty batch while there are none; `null` once the stream closed. */
  async pull({ max, signal }: PullOptions): Promise<SourceBatch<Document | null> | null> {
    const wait = this.#idleUntil - Date.now();
    if (wait > 0) await sleep(wait, signal);
    if (signal.aborted) return { records: [] };
    const events: Event[] = [];
    try {
      if (!this.#stream) await this.open();
      const stream = this.#stream!;
      if (this.#stash) events.push(this.#stash);
      else {
        const next = await stream.tryNext();
        if (next) events.push(next);
      }
      this.#stash = undefined;
      while (events.length < max && this.#buffered() > 0) {
        const next = await stream.tryNext();
        if (!next) break;
        events.push(next);
      }
    } catch (error) {
      if (!isTransient(error) && events.length === 0) throw error;
      // Reopen after the last event handed out; the events read now are read again then.
      await this.#stream?.close().catch(() => {});
      this.#stream = undefined;
      this.#idleUntil = Date.now() + this.#o.pollMs;
      return { records: [] };
    }
    if (events.length === 0) {
      if (this.#stream?.closed) return null;
      this.#idleUntil = Date.now() + this.#o.pollMs;
      return { records: [] };
    }
    this.#idleUntil = 0;
    this.#token = toEjson(events[events.length - 1]!._id);
    const records = events.filter((e) => CRUD.has(e.operationType)).map((e) => this.#record(e));
    return { records, position: { token: this.#token } satisfies ChangePosition };
  }

  /** Closes the stream's cursor. */
  async close(): Promise<void> {
    this.#stash = undefined;
    await this.#stream?.close();
    this.#stream = undefined;
  }
}
