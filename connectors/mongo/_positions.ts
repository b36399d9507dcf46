// Saved positions of MongoDB sources: one document per source in a small collection
// (`sluice_positions` by default), `{ _id: resumeId, position, db, collection, at }`, written on
// ack and read on open, so a restarted source resumes after what the pipeline finished.
import type { Collection, Document } from "../../stores/mongo/_deps.ts";
import { isTransient } from "./_client.ts";

/** Where a source saves its position, when it has a `resumeId`. */
export class PositionStore {
  readonly #collection: Collection<Document>;
  readonly #id: string;
  readonly #about: Document;

  constructor(collection: Collection<Document>, id: string, about: Document) {
    this.#collection = collection;
    this.#id = id;
    this.#about = about;
  }

  /** The saved position, or `undefined` when there is none yet. */
  async load(): Promise<unknown> {
    const doc = await this.#collection.findOne({ _id: this.#id } as Document);
    return doc?.position;
  }

  /**
   * Saves a position (a JSON value). A transient failure is skipped: a later ack saves a later
   * position, and meanwhile a restart replays a little more (at-least-once).
   */
  async save(position: unknown): Promise<void> {
    try {
      await this.#collection.updateOne(
        { _id: this.#id } as Document,
        { $set: { ...this.#about, position, at: new Date() } },
        { upsert: true },
      );
    } catch (error) {
      if (!isTransient(error)) throw error;
    }
  }
}
