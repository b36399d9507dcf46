// The files a file source reads: once, in path order, or followed (tail -F) with new files,
// rotation (the path now names another inode) and truncation detected by polling.
import { type CursorChunk, type CursorOptions, FileCursor } from "./_file_cursor.ts";
import { expandGlob, isGlob } from "./_glob.ts";

/** What a file set was asked to read. */
export interface FileSetOptions {
  pattern: string;
  follow: boolean;
  gzip: "auto" | boolean;
  cursor: Omit<CursorOptions, "gzip">;
  /** Whether this source instance reads `path` (files are spread over instances). */
  mine(path: string): boolean;
  /** Resume: skip files before `file`, start `file` at this offset and line. */
  startAt?: { file: string; byteOffset: number; line: number; chunk?: number };
}

/** A chunk and the cursor it came from. */
export interface SetChunk extends CursorChunk {
  cursor: FileCursor;
}

interface Followed {
  cursor: FileCursor;
  /** The path was rotated or removed: read the old file to its end, then reopen the path. */
  draining: boolean;
}

/** Files being read. */
export class FileSet {
  readonly #o: FileSetOptions;
  #queue: string[] | undefined;
  #current: FileCursor | undefined;
  readonly #followed = new Map<string, Followed>();
  /** Files read to their end that are not followed (gzip archives). */
  readonly #done = new Set<string>();
  #turn = 0;
  #resumed = false;
  #closed = false;

  constructor(options: FileSetOptions) {
    this.#o = options;
  }

  async #list(): Promise<string[]> {
    const { pattern } = this.#o;
    let paths: string[];
    if (isGlob(pattern)) paths = await expandGlob(pattern);
    else paths = await Deno.stat(pattern).then((s) => s.isFile ? [pattern] : [], () => []);
    return paths.filter((p) => this.#o.mine(p));
  }

  #gzip(path: string): boolean {
    const { gzip } = this.#o;
    return gzip === "auto" ? path.endsWith(".gz") : gzip;
  }

  async #open(path: string): Promise<FileCursor> {
    const start = this.#o.startAt;
    let at: { offset: number; line: number; index?: number } | undefined;
    if (start?.file === path && !this.#resumed) {
      this.#resumed = true; // only the first open resumes; a rotated file starts at 0
      // The chunk after the one that ended there: striped instances keep counting the same cut.
      const index = start.chunk === undefined ? undefined : start.chunk + 1;
      at = { offset: start.byteOffset, line: start.line, index };
    }
    const cursor = await FileCursor.open(path, { ...this.#o.cursor, gzip: this.#gzip(path) }, at);
    if (this.#closed) {
      cursor.close(); // closed while it opened: keep nothing open
      throw new Error(`Cannot read ${path}: the file source was closed`);
    }
    return cursor;
  }

  #skipBeforeStart(paths: string[]): string[] {
    const file = this.#o.startAt?.file;
    return file === undefined ? paths : paths.filter((p) => p >= file);
  }

  /**
   * The next chunk; `"idle"` when followed files have nothing new (poll again later); `"end"`
   * when a bounded read is complete. `skip` (files read once only) says, by each file's chunk
   * index, which chunks are only cut and their lines counted (`skipped`, with no bytes).
   */
  async next(skip?: (index: number) => boolean): Promise<SetChunk | "idle" | "end"> {
    if (this.#closed) return "end";
    return this.#o.follow ? await this.#nextFollowed() : await this.#nextOnce(skip);
  }

  async #nextOnce(skip?: (index: number) => boolean): Promise<SetChunk | "end"> {
    this.#queue ??= this.#skipBeforeStart(await this.#list());
    for (;;) {
      if (!this.#current) {
        const path = this.#queue.shift();
        if (path === undefined) return "end";
        this.#current = await this.#open(path);
      }
      const chunk = await this.#current.next(true, skip);
      if (chunk) return { ...chunk, cursor: this.#current };
      this.#current.close();
      this.#current = undefined;
    }
  }

  async #nextFollowed(): Promise<SetChunk | "idle"> {
    if (!this.#queue) {
      this.#queue = [];
      for (const path of this.#skipBeforeStart(await this.#list())) await this.#follow(path);
    }
    const entries = [...this.#followed.values()];
    for (let i = 0; i < entries.length; i++) {
      const f = entries[(this.#turn + i) % entries.length]!;
      const chunk = await f.cursor.next(f.draining);
      if (chunk) {
        this.#turn = (this.#turn + i + 1) % Math.max(1, entries.length);
        return { ...chunk, cursor: f.cursor };
      }
      if (f.draining || this.#gzip(f.cursor.path)) {
        f.cursor.close();
        this.#followed.delete(f.cursor.path);
        if (!f.draining) this.#done.add(f.cursor.path);
      }
    }
    await this.#poll();
    return "idle";
  }

  async #follow(path: string): Promise<void> {
    try {
      this.#followed.set(path, { cursor: await this.#open(path), draining: false });
    } catch (e) {
      if (!(e instanceof Deno.errors.NotFound)) throw e;
    }
  }

  /** Detects rotation and truncation of followed files, and new files matching the pattern. */
  async #poll(): Promise<void> {
    for (const [path, f] of this.#followed) {
      if (f.draining) continue;
      const stat = await Deno.stat(path).catch(() => null);
      if (this.#closed) return;
      if (!stat || (stat.ino !== null && f.cursor.ino !== null && stat.ino !== f.cursor.ino)) {
        f.draining = true; // renamed or removed: finish the old file, then reopen the path
      } else if (stat.size < f.cursor.readOffset) {
        await f.cursor.reset();
        if (this.#closed) f.cursor.close(); // closed meanwhile: the fresh file too
      }
    }
    for (const path of await this.#list()) {
      if (!this.#followed.has(path) && !this.#done.has(path)) await this.#follow(path);
    }
  }

  /** Closes every open file; nothing is opened afterwards. Idempotent. */
  close(): void {
    this.#closed = true;
    this.#current?.close();
    this.#current = undefined;
    for (const f of this.#followed.values()) f.cursor.close();
    this.#followed.clear();
  }
}
