// Pull-based byte readers over a file: plain (seekable, can be followed as it grows) or gzip.
// Gzip goes through node:zlib because Deno's DecompressionStream rejects concatenated gzip
// members ("failed to write whole buffer"), which `cat a.gz b.gz`, log shippers and fileSink's
// per-batch members all produce; node:zlib reads them as one stream.
import { type CreateGunzip, loadCreateGunzip } from "./_deps.ts";

/** Reads bytes on demand; nothing is read ahead beyond one compressed block. */
export interface ByteReader {
  /** Up to `max` bytes, or `null` when nothing more is there now (end of file). */
  read(max: number): Promise<Uint8Array | null>;
  /** Plain files: reads into `buf`, returning the count, or `null` at the end of the file. */
  readInto?(buf: Uint8Array): Promise<number | null>;
  /** The file's inode (Linux/macOS), to detect rotation; `null` where unknown. */
  readonly ino: number | null;
  /** Closes the file. */
  close(): void;
}

/** Opens `path` positioned at `offset` (in decompressed bytes for gzip). */
export async function openByteReader(
  path: string,
  options: { gzip: boolean; offset: number },
): Promise<ByteReader> {
  const file = await Deno.open(path, { read: true });
  try {
    const stat = await file.stat();
    const ino = stat.ino ?? null;
    if (!options.gzip) {
      if (options.offset > 0) await file.seek(options.offset, Deno.SeekMode.Start);
      return plainReader(file, ino, stat.isFile);
    }
    const reader = gzipReader(file, ino, await loadCreateGunzip());
    for (let left = options.offset; left > 0;) {
      const skipped = await reader.read(Math.min(left, 1 << 16));
      if (!skipped) break;
      left -= skipped.length;
    }
    return reader;
  } catch (e) {
    file.close();
    throw e;
  }
}

/**
 * A regular file is read synchronously: from the page cache that takes microseconds, less than
 * the hand-off of an async op, and at its end it returns at once. A FIFO or device could block,
 * so those are read with the async op.
 */
function plainReader(file: Deno.FsFile, ino: number | null, regular: boolean): ByteReader {
  let closed = false;
  const readInto = async (buf: Uint8Array): Promise<number | null> => {
    const n = regular ? file.readSync(buf) : await file.read(buf);
    return n === null || n === 0 ? null : n;
  };
  return {
    ino,
    async read(max) {
      const buf = new Uint8Array(max);
      const n = await readInto(buf);
      return n === null ? null : buf.subarray(0, n);
    },
    readInto,
    close() {
      if (!closed) file.close();
      closed = true;
    },
  };
}

function gzipReader(
  file: Deno.FsFile,
  ino: number | null,
  createGunzip: CreateGunzip,
): ByteReader {
  const gunzip = createGunzip();
  const out: Uint8Array[] = [];
  let ended = false;
  let inputDone = false;
  let failure: Error | undefined;
  let closed = false;
  let wake: (() => void) | undefined;
  const notify = () => {
    wake?.();
    wake = undefined;
  };
  gunzip.on("data", (d: Uint8Array) => {
    out.push(d);
    notify();
  });
  gunzip.on("end", () => {
    ended = true;
    notify();
  });
  gunzip.on("error", (e: Error) => {
    failure = e;
    notify();
  });
  const feed = async (): Promise<void> => {
    const buf = new Uint8Array(1 << 14);
    const n = await file.read(buf);
    if (n === null || n === 0) {
      inputDone = true;
      gunzip.end();
    } else await new Promise<unknown>((r) => gunzip.write(buf.subarray(0, n), r));
  };
  return {
    ino,
    async read(max) {
      while (out.length === 0 && !ended && !failure) {
        if (inputDone) await new Promise<void>((r) => (wake = r));
        else await feed();
      }
      if (failure) {
        throw new Error(`Cannot read gzip file: ${failure.message}`, { cause: failure });
      }
      const head = out[0];
      if (!head) return null;
      if (head.length <= max) {
        out.shift();
        return head;
      }
      out[0] = head.subarray(max);
      return head.subarray(0, max);
    },
    close() {
      if (closed) return;
      closed = true;
      gunzip.destroy();
      file.close();
    },
  };
}
