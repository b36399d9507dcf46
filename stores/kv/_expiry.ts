// When a KvStore entry expires. Deno KV's `expireIn` only promises that an entry is deleted some
// time after it (the local SQLite backend sweeps now and then: entries outlive their TTL by
// seconds), and it never tells a reader when an entry expires. So an entry written with a TTL is
// stored in an envelope that carries its expiry time: reads treat it as absent from then on, and
// read-modify-writes (`increment`) can keep it. `expireIn` is still set, so KV deletes it later.

const MARK = "@sluice/expires";

/** What is stored at the key of an entry written with a TTL. */
export interface Expiring {
  /** Expiry time, ms since the epoch. */
  readonly [MARK]: number;
  /** The value, or the manifest of a chunked value. */
  readonly value: unknown;
}

/** Bytes an envelope adds to a stored value (an upper bound). */
export const ENVELOPE_BYTES = 64;

/** Wraps a stored value (or manifest) with its expiry time; `undefined` leaves it as it is. */
export function withExpiry(stored: unknown, expiresAt: number | undefined): unknown {
  return expiresAt === undefined ? stored : { [MARK]: expiresAt, value: stored } as Expiring;
}

/** The stored value (or manifest) and its expiry time, if it has one. */
export function unwrap(stored: unknown): { stored: unknown; expiresAt: number | undefined } {
  if (
    typeof stored === "object" && stored !== null &&
    typeof (stored as Expiring)[MARK] === "number" && "value" in stored
  ) {
    return { stored: (stored as Expiring).value, expiresAt: (stored as Expiring)[MARK] };
  }
  return { stored, expiresAt: undefined };
}
