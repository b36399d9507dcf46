// Lineage of a batch: done when the batch was processed and every batch derived from it was acked
// downstream (or written by a sink, or dead-lettered).

/** Reference count of outstanding work derived from one input batch. */
export class Token {
  #pending = 1;
  #done: (() => void) | undefined;

  /** @param done Called once, when the count reaches zero. */
  constructor(done?: () => void) {
    this.#done = done;
  }

  /** One more piece of derived work. */
  hold(): void {
    this.#pending++;
  }

  /** Whether every piece of derived work has finished. */
  get done(): boolean {
    return this.#pending === 0;
  }

  /** One piece of derived work finished. */
  release(): void {
    if (--this.#pending === 0) {
      const done = this.#done;
      this.#done = undefined;
      done?.();
    }
  }
}
