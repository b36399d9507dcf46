// A read position in one file that hands out chunks cut at line boundaries: the partial last
// line is carried into the next chunk, so no chunk splits a line (nor a UTF-8 character).
import { type ByteReader, openByteReader } from "./_byte_reader.ts";

/** A piece of a file as the cursor hands it out. */
export interface CursorChunk {
  /** The bytes (a fresh buffer, never a view into a larger one). */
  bytes: Uint8Array;
  /** Byte offset of the first byte (decompressed offset for gzip). */
  offset: number;
  /** 1-based number of the line the chunk starts with. */
  line: number;
  /** Cut and counted only (see `FileCursor.next`): `bytes` is empty. */
  skipped?: true;
  /** Its index among the file's chunks (counted from where the cursor opened, see `Position`). */
  index: number;
}

/** How a cursor reads. */
export interface CursorOptions {
  gzip: boolean;
  /** Cut at line boundaries (every format but `bytes`). */
  lines: boolean;
  /** Target chunk size. */
  chunkBytes: number;
  /** A line longer than this is cut anyway (at a UTF-8 character boundary). */
  maxLineBytes: number;
  /** Read line 1 as a header (CSV) instead of handing it out. */
  header: boolean;
}

const NL = 10;

/** The bytes of a skipped chunk. */
const SKIPPED = new Uint8Array(0);

function concat(a: Uint8Array, b: Uint8Array): Uint8Array {
  if (a.length === 0) return b;
  const out = new Uint8Array(a.length + b.length);
  out.set(a);
  out.set(b, a.length);
  return out;
}

/** Newlines in `bytes`, four bytes at a time (a striped read counts every byte of the file). */
export function countLines(bytes: Uint8Array): number {
  let n = 0;
  let i = 0;
  const end = bytes.length;
  for (; i < end && (bytes.byteOffset + i) % 4 !== 0; i++) if (bytes[i] === NL) n++;
  const words = (end - i) >> 2;
  const view = words > 0 ? new Uint32Array(bytes.buffer, bytes.byteOffset + i, words) : [];
  for (let k = 0; k < words; k++) {
    const x = view[k]! ^ 0x0a0a0a0a; // a newline byte becomes 0
    // 0x80 in each byte that is 0, 0 elsewhere (no carry crosses bytes: 0x7f + 0x7f < 0x100).
    const zero = ~(((x & 0x7f7f7f7f) + 0x7f7f7f7f) | x | 0x7f7f7f7f);
    if (zero === 0) continue;
    let y = zero >>> 7;
    y = (y & 0x00ff00ff) + ((y >>> 8) & 0x00ff00ff);
    n += (y & 0xffff) + (y >>> 16);
  }
  for (i += words * 4; i < end; i++) if (bytes[i] === NL) n++;
  return n;
}

/** Largest cut ≤ `at` that does not split a UTF-8 sequence. */
function utf8Cut(bytes: Uint8Array, at: number): number {
  let cut = Math.min(at, bytes.length);
  while (cut > 0 && cut < bytes.length && (bytes[cut]! & 0xc0) === 0x80) cut--;
  return cut === 0 ? at : cut;
}

/** One open file, its position and what was read past the last line boundary. */
export class FileCursor {
  readonly path: string;
  readonly #options: CursorOptions;
  #reader: ByteReader;
  #carry: Uint8Array = new Uint8Array(0);
  /** The carry's buffer was made here and nothing else views it. */
  #owned = false;
  /** Where chunks that are skipped are read: one buffer, reused (see `next`'s `skip`). */
  #scratch: Uint8Array | undefined;
  /** Chunks cut so far. */
  #index = 0;
  /** Offset of the first byte not yet handed out. */
  offset: number;
  /** Line number at `offset`. */
  line: number;
  /** The raw CSV header line, when `header` is set. */
  header: string | undefined;

  private constructor(path: string, reader: ByteReader, options: CursorOptions, at: Position) {
    this.path = path;
    this.#reader = reader;
    this.#options = options;
    this.offset = at.offset;
    this.line = at.line;
    this.#index = at.index ?? 0;
  }

  /** Opens `path` at a position (the start by default), reading the CSV header first if asked. */
  static async open(
    path: string,
    options: CursorOptions,
    at: Position = { offset: 0, line: 1 },
  ): Promise<FileCursor> {
    let header: string | undefined;
    if (options.header) {
      const first = new FileCursor(path, await openByteReader(path, { ...options, offset: 0 }), {
        ...options,
        header: false,
      }, { offset: 0, line: 1 });
      const chunk = await first.#nextLine();
      const end = chunk ? chunk.length : 0;
      header = new TextDecoder().decode(chunk ?? new Uint8Array(0)).replace(/\r?\n$/, "");
      if (at.offset < end) {
        first.header = header;
        first.offset = end;
        first.line = 2;
        return first;
      }
      first.close();
    }
    const reader = await openByteReader(path, { gzip: options.gzip, offset: at.offset });
    const cursor = new FileCursor(path, reader, options, at);
    cursor.header = header;
    return cursor;
  }

  /** The file's inode when opened. */
  get ino(): number | null {
    return this.#reader.ino;
  }

  /** Bytes read from the file so far (handed out or carried). */
  get readOffset(): number {
    return this.offset + this.#carry.length;
  }

  async #nextLine(): Promise<Uint8Array | null> {
    for (;;) {
      const nl = this.#carry.indexOf(NL);
      if (nl >= 0) return this.#take(nl + 1);
      if (!await this.#fill(this.#options.chunkBytes, false)) {
        return this.#carry.length > 0 ? this.#take(this.#carry.length) : null;
      }
    }
  }

  #take(n: number): Uint8Array {
    const carry = this.#carry;
    this.#carry = carry.slice(n);
    this.offset += n;
    // A carry that starts a buffer of its own (see #fill): the chunk keeps that buffer, cut to its
    // length, instead of being copied out of it. (The gzip reader's chunks may share theirs.)
    const owned = this.#owned && carry.byteOffset === 0 && carry.buffer instanceof ArrayBuffer;
    this.#owned = true; // the slice above
    return owned ? new Uint8Array((carry.buffer as ArrayBuffer).transfer(n)) : carry.slice(0, n);
  }

  /**
   * Reads about `want` more bytes after the carry; false at the end of the file. For a chunk to
   * be skipped, into the scratch buffer rather than a new one.
   */
  async #fill(want: number, skip: boolean): Promise<boolean> {
    const reader = this.#reader;
    if (reader.readInto) {
      // Read straight behind the carry: one buffer per chunk, no concatenation.
      const held = this.#carry.length;
      let buf: Uint8Array;
      if (skip) {
        if (!this.#scratch || this.#scratch.length < held + want) {
          this.#scratch = new Uint8Array(2 * (held + want));
        }
        buf = this.#scratch.subarray(0, held + want);
        // The carry may sit in the scratch already (anywhere in it, maybe past `held + want`):
        // moved within the whole scratch, overlap and all.
        const carry = this.#carry;
        if (carry.buffer === this.#scratch.buffer) {
          this.#scratch.copyWithin(0, carry.byteOffset, carry.byteOffset + held);
        } else buf.set(carry);
        this.#owned = false;
      } else {
        buf = new Uint8Array(held + want);
        buf.set(this.#carry);
      }
      const n = await reader.readInto(buf.subarray(held));
      if (n === null) {
        if (skip) this.#carry = buf.subarray(0, held); // where the carry was moved to
        return false;
      }
      this.#carry = buf.subarray(0, held + n);
      if (!skip) this.#owned = true;
      return true;
    }
    const more = await reader.read(want);
    if (!more) return false;
    this.#owned = this.#carry.length > 0; // concat copies into a new buffer, or hands back `more`
    this.#carry = concat(this.#carry, more);
    return true;
  }

  #chunk(n: number, skip: boolean): CursorChunk {
    const at = { offset: this.offset, line: this.line, index: this.#index };
    this.#index++;
    if (skip) {
      if (this.#options.lines) this.line += countLines(this.#carry.subarray(0, n));
      this.#carry = this.#carry.subarray(n);
      this.#owned = false;
      this.offset += n;
      return { bytes: SKIPPED, ...at, skipped: true };
    }
    const bytes = this.#take(n);
    if (this.#options.lines) this.line += countLines(bytes);
    return { bytes, ...at };
  }

  /**
   * The next chunk, or `null` when the file has no more complete data now. At the end of the
   * file, a last line without newline is handed out when `flush`, held otherwise (followed files
   * may still complete it). A chunk for which `skip(index)` holds (its index among the chunks
   * this cursor cut) is cut exactly the same, but only its lines are counted: it comes `skipped`,
   * with no bytes, and no buffer is made for it.
   */
  async next(flush: boolean, skipIf?: (index: number) => boolean): Promise<CursorChunk | null> {
    const { chunkBytes, maxLineBytes, lines } = this.#options;
    const skip = skipIf?.(this.#index) ?? false;
    for (;;) {
      if (this.#carry.length >= chunkBytes) {
        if (!lines) return this.#chunk(chunkBytes, skip);
        // Whole lines up to chunkBytes; a line crossing it ends the chunk (one pull hands out
        // about chunkBytes, however much the last read brought in).
        const within = this.#carry.lastIndexOf(NL, chunkBytes - 1);
        const nl = within >= 0 ? within : this.#carry.indexOf(NL, chunkBytes);
        if (nl >= 0) return this.#chunk(nl + 1, skip);
        if (this.#carry.length >= maxLineBytes) {
          return this.#chunk(utf8Cut(this.#carry, maxLineBytes), skip);
        }
      }
      if (await this.#fill(Math.max(chunkBytes - this.#carry.length, 1 << 14), skip)) continue;
      if (this.#carry.length === 0) return null;
      if (!lines || flush) return this.#chunk(this.#carry.length, skip);
      const nl = this.#carry.lastIndexOf(NL);
      return nl >= 0 ? this.#chunk(nl + 1, skip) : null;
    }
  }

  /** Starts over at offset 0 (the file was truncated). */
  async reset(): Promise<void> {
    this.close();
    const fresh = await FileCursor.open(this.path, this.#options);
    this.#reader = fresh.#reader;
    this.#carry = fresh.#carry;
    this.#owned = fresh.#owned;
    this.offset = fresh.offset;
    this.line = fresh.line;
    this.header = fresh.header;
  }

  /** Closes the file. */
  close(): void {
    this.#reader.close();
  }
}

/** Where to start reading. */
export interface Position {
  offset: number;
  line: number;
  /** Index of the chunk that starts here (0 at the start of the file, or where reading began). */
  index?: number;
}
