// Pinned third-party specifiers of the file connector. They load on first use: csv-parse,
// csv-stringify and node:zlib cost a worker ~10 ms each to load, and most pipelines need none.

/** csv-parse's sync parser. */
export type ParseCsv = typeof import("npm:csv-parse@7.0.3/sync").parse;
/** csv-stringify's sync stringifier. */
export type StringifyCsv = typeof import("npm:csv-stringify@6.9.0/sync").stringify;
/** node:zlib's gunzip factory. */
export type CreateGunzip = typeof import("node:zlib").createGunzip;

/** Loads csv-parse's sync parser. */
export async function loadParseCsv(): Promise<ParseCsv> {
  // deno-lint-ignore no-import-prefix
  return (await import("npm:csv-parse@7.0.3/sync")).parse;
}

/** Loads csv-stringify's sync stringifier. */
export async function loadStringifyCsv(): Promise<StringifyCsv> {
  // deno-lint-ignore no-import-prefix
  return (await import("npm:csv-stringify@6.9.0/sync")).stringify;
}

/**
 * Loads node:zlib's gunzip. Gzip goes through node:zlib because Deno's DecompressionStream
 * rejects concatenated gzip members.
 */
export async function loadCreateGunzip(): Promise<CreateGunzip> {
  return (await import("node:zlib")).createGunzip;
}
