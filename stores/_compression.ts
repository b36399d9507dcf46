// Optional gzip compression of encoded store values (CompressionStream, no dependency). A gzip
// stream starts with the bytes 1f 8b, which no V8-serialised value (ff …) and no decimal number
// text does, so readers recognise compressed values whatever the writer's threshold was.

/** Whether `bytes` is a gzip stream (its magic number). */
export function isGzip(bytes: Uint8Array): boolean {
  return bytes.byteLength >= 2 && bytes[0] === 0x1f && bytes[1] === 0x8b;
}

/** gzip-compresses `bytes`. */
export function gzip(bytes: Uint8Array): Promise<Uint8Array> {
  return through(bytes, new CompressionStream("gzip"));
}

/**
 * Decompresses a gzip stream.
 *
 * @throws {TypeError} When `bytes` is not a valid gzip stream.
 */
export function gunzip(bytes: Uint8Array): Promise<Uint8Array> {
  return through(bytes, new DecompressionStream("gzip"));
}

/**
 * Validates a compression threshold option: `undefined` (never compress) or a non-negative
 * number of bytes.
 *
 * @throws {RangeError} When it is anything else.
 */
export function compressThreshold(value: unknown, where: string): number | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== "number" || !(value >= 0)) {
    throw new RangeError(
      `Cannot open ${where}: compressAboveBytes must be a non-negative number, got ${
        String(value)
      }`,
    );
  }
  return value;
}

async function through(
  bytes: Uint8Array,
  transform: CompressionStream | DecompressionStream,
): Promise<Uint8Array> {
  const input = new Blob([bytes as Uint8Array<ArrayBuffer>]).stream();
  const out = await new Response(input.pipeThrough(transform)).arrayBuffer();
  return new Uint8Array(out);
}
