// Creating the ioredis client of a RedisStore (standalone or cluster, reconnecting with jittered
// exponential backoff) and classifying its errors. The URL may hold a password: it goes to ioredis
// only, messages name the host.
import { SluiceError } from "../../actors/errors.ts";
import { attemptOn, oneLine } from "../_faults.ts";
import { redisHost } from "../_hosts.ts";
import { type Cluster, loadIoredis, type Redis } from "./_deps.ts";
import { isTransient } from "./_transient.ts";

export { isTransient };

/** What {@linkcode connect} needs (the connection part of `RedisStoreOptions`). */
export interface Connection {
  url: string;
  cluster?: { nodes: readonly string[] };
  connectTimeoutMs: number;
  maxRetriesPerRequest: number;
  clientOptions: Record<string, unknown>;
}

/** Delay before reconnection attempt `times` (1, 2, …): 50 ms doubling to 2 s, with jitter. */
export function backoff(times: number): number {
  const ceiling = Math.min(2_000, 50 * 2 ** Math.min(times - 1, 6));
  return Math.round(ceiling / 2 + Math.random() * ceiling / 2);
}

/** Where a connection goes, without credentials. */
export function target(c: Connection): string {
  return c.cluster ? c.cluster.nodes.join(",") : redisHost(c.url) ?? "redis";
}

/**
 * Opens a client and waits until it is ready.
 *
 * @throws {SluiceError} `E_STORE` when the server cannot be reached.
 */
export async function connect(c: Connection): Promise<Redis | Cluster> {
  const { Redis, Cluster } = await loadIoredis();
  const common = {
    connectTimeout: c.connectTimeoutMs,
    maxRetriesPerRequest: c.maxRetriesPerRequest,
    retryStrategy: backoff,
    lazyConnect: true,
    ...c.clientOptions,
  };
  const client = c.cluster
    ? new Cluster(c.cluster.nodes.map(node), {
      clusterRetryStrategy: backoff,
      enableAutoPipelining: true,
      lazyConnect: true,
      redisOptions: { ...common, lazyConnect: false },
    })
    : new Redis(c.url, common);
  client.on("error", () => {}); // surfaced by the commands that fail
  try {
    await client.connect();
  } catch (cause) {
    client.disconnect();
    throw new SluiceError(
      "E_STORE",
      `Cannot open RedisStore at ${target(c)}: ${oneLine(cause)}`,
      { cause },
    );
  }
  return client;
}

function node(address: string): { host: string; port: number } {
  const at = address.lastIndexOf(":");
  return at < 0
    ? { host: address, port: 6379 }
    : { host: address.slice(0, at), port: Number(address.slice(at + 1)) };
}

/** Closes a client: politely when connected, at once otherwise. */
export async function disconnect(client: Redis | Cluster): Promise<void> {
  if (client.status === "ready") {
    try {
      await client.quit();
      return;
    } catch {
      // fall through
    }
  }
  client.disconnect();
}

/** Runs a driver call; a connection fault becomes a RetriableError. */
export function attempt<T>(what: string, where: string, call: () => Promise<T>): Promise<T> {
  return attemptOn("Redis", isTransient, what, where, call);
}
