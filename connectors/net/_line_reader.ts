// Reads lines from a byte stream (a TCP connection) only when asked: nothing is read between
// calls, so an unread socket fills the kernel buffers and TCP flow control stops the peer.

/** Reads from `read` on demand and splits what it got into lines. */
export class LineReader {
  readonly #read: (buf: Uint8Array) => Promise<number | null>;
  readonly #maxLineBytes: number;
  readonly #decoder = new TextDecoder();
  readonly #buf = new Uint8Array(65_536);
  #text = "";
  #lines: string[] = [];
  #eof = false;
  /** A read still in flight, kept across calls so an aborted wait loses no bytes. */
  #reading: Promise<number | null> | undefined;

  constructor(read: (buf: Uint8Array) => Promise<number | null>, maxLineBytes = 1 << 20) {
    this.#read = read;
    this.#maxLineBytes = maxLineBytes;
  }

  /** Whether whole lines are waiting to be taken. */
  get buffered(): boolean {
    return this.#lines.length > 0;
  }

  /**
   * Up to `max` lines (reading once if none is buffered); `[]` when `signal` aborted first;
   * `null` at end of stream once everything was taken. A read error counts as end of stream.
   */
  async lines(max: number, signal?: AbortSignal): Promise<string[] | null> {
    while (this.#lines.length === 0 && !this.#eof) {
      this.#reading ??= this.#read(this.#buf).catch(() => null);
      const n = await abortable(this.#reading, signal);
      if (n === undefined) return [];
      this.#reading = undefined;
      if (n === null) {
        this.#eof = true;
        this.#text += this.#decoder.decode();
        if (this.#text !== "") this.#lines.push(this.#text);
        this.#text = "";
      } else this.#split(this.#decoder.decode(this.#buf.subarray(0, n), { stream: true }));
    }
    if (this.#lines.length === 0) return null;
    const out = this.#lines.slice(0, max);
    this.#lines = this.#lines.slice(out.length);
    return out;
  }

  #split(chunk: string): void {
    const parts = (this.#text + chunk).split("\n");
    this.#text = parts.pop()!;
    for (const p of parts) this.#lines.push(p.endsWith("\r") ? p.slice(0, -1) : p);
    while (this.#text.length > this.#maxLineBytes) {
      this.#lines.push(this.#text.slice(0, this.#maxLineBytes));
      this.#text = this.#text.slice(this.#maxLineBytes);
    }
  }
}

/** Resolves with `p`, or with `undefined` once `signal` aborts. */
export function abortable<T>(p: Promise<T>, signal?: AbortSignal): Promise<T | undefined> {
  if (!signal) return p;
  if (signal.aborted) return Promise.resolve(undefined);
  return new Promise((resolve, reject) => {
    const abort = () => resolve(undefined);
    signal.addEventListener("abort", abort, { once: true });
    p.then(resolve, reject).finally(() => signal.removeEventListener("abort", abort));
  });
}

/**
 * `reader.lines(max)`, giving up with `[]` after `ms` (so a pull never blocks the task for long)
 * or when `signal` aborts; the read in flight is kept for the next call.
 */
export async function waitLines(
  reader: LineReader,
  max: number,
  signal: AbortSignal,
  ms = 250,
): Promise<string[] | null> {
  const timeout = new AbortController();
  const timer = setTimeout(() => timeout.abort(), ms);
  try {
    return await reader.lines(max, AbortSignal.any([signal, timeout.signal]));
  } finally {
    clearTimeout(timer);
  }
}
