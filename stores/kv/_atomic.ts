// Packs writes into Deno KV atomic operations within KV's limits (1000 mutations, 100 checks,
// 80 KiB of keys, 800 KiB of keys + values) and commits them in order.
import { RetriableError } from "../../actors/errors.ts";
import { BATCH_BYTES, BATCH_CHECKS, BATCH_KEY_BYTES, BATCH_MUTATIONS, keyBytes } from "./_codec.ts";

/** One mutation, optionally checked, tagged with the user key it serves. */
export interface Op {
  /** The user key (operations that fail a check are reported by it). */
  readonly user: string;
  readonly key: Deno.KvKey;
  /** `undefined`: unchecked; `null`: the key must be absent; else its expected versionstamp. */
  readonly check?: string | null;
  readonly kind: "set" | "delete";
  readonly value?: unknown;
  readonly expireIn?: number;
  /** Key bytes + an upper bound of the value's bytes. */
  readonly bytes: number;
  readonly keyBytes: number;
}

/** What {@linkcode commitOps} reports. */
export interface Committed {
  /** User keys whose operations failed a check. */
  readonly failed: Set<string>;
  /** Versionstamp of the commit that wrote each other user key. */
  readonly stamps: Map<string, string>;
}

/** A set of `key` to `value`; `valueBytes` is an upper bound of the value's encoded size. */
export function setOp(
  user: string,
  key: (string | number)[],
  value: unknown,
  valueBytes: number,
  extra: { check?: string | null; expireIn?: number } = {},
): Op {
  const kb = keyBytes(key);
  return { user, key, kind: "set", value, bytes: kb + valueBytes, keyBytes: kb, ...extra };
}

/** A delete of `key`. */
export function deleteOp(user: string, key: (string | number)[], check?: string | null): Op {
  const kb = keyBytes(key);
  return check === undefined
    ? { user, key, kind: "delete", bytes: kb, keyBytes: kb }
    : { user, key, kind: "delete", bytes: kb, keyBytes: kb, check };
}

/**
 * Commits `ops` in as few atomic operations as the limits allow, in order.
 *
 * @returns User keys of the operations whose checks failed (nothing of those was written), and
 *   the versionstamp each other user key was committed with.
 */
export async function commitOps(kv: Deno.Kv, ops: readonly Op[]): Promise<Committed> {
  const failed = new Set<string>();
  const stamps = new Map<string, string>();
  let group: Op[] = [];
  let checks = 0, keys = 0, bytes = 0;
  const flush = async () => {
    if (group.length === 0) return;
    const atomic = kv.atomic();
    for (const op of group) {
      if (op.check !== undefined) atomic.check({ key: op.key, versionstamp: op.check });
      if (op.kind === "delete") atomic.delete(op.key);
      else atomic.set(op.key, op.value, op.expireIn === undefined ? {} : { expireIn: op.expireIn });
    }
    const result = await whenUnlocked(() => atomic.commit());
    if (!result.ok) { for (const op of group) failed.add(op.user); }
    else for (const op of group) stamps.set(op.user, result.versionstamp);
    group = [];
    checks = keys = bytes = 0;
  };
  for (const op of ops) {
    const c = op.check === undefined ? 0 : 1;
    const k = op.keyBytes * (1 + c);
    const full = group.length + 1 > BATCH_MUTATIONS || checks + c > BATCH_CHECKS ||
      keys + k > BATCH_KEY_BYTES || bytes + op.bytes > BATCH_BYTES;
    if (full) await flush();
    group.push(op);
    checks += c;
    keys += k;
    bytes += op.bytes;
  }
  await flush();
  return { failed, stamps };
}

const LOCKED = /database is (locked|busy)/i;

/**
 * Runs a KV call, retrying with jittered backoff while SQLite reports the file locked by another
 * connection (another worker or process writing the same file). Up to ~10 s in all.
 *
 * @throws {RetriableError} When the file stays locked.
 */
export async function whenUnlocked<T>(call: () => Promise<T>): Promise<T> {
  for (let attempt = 0;; attempt++) {
    try {
      return await call();
    } catch (e) {
      if (!(e instanceof Error) || !LOCKED.test(e.message)) throw e;
      if (attempt >= 200) {
        throw new RetriableError(`Cannot write to Deno KV: ${e.message}`, { cause: e });
      }
      const ceiling = Math.min(100, 2 * 2 ** Math.min(attempt, 6));
      await new Promise((r) => setTimeout(r, ceiling / 2 + Math.random() * ceiling / 2));
    }
  }
}
