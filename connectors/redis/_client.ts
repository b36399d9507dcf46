// Shared by the Redis Streams source and sink: connection config as zod fields, the ioredis
// factory and the classification of errors. The URL (which may hold a password) is handed to
// ioredis only and never put in messages.
import { z } from "../../actors/_deps.ts";
import { loadIoredis, type Redis } from "../../stores/redis/_deps.ts";

/** The Redis store's classification: one for the driver. */
export { isTransient } from "../../stores/redis/_transient.ts";

/** {@linkcode RedisConnectionOptions} as validated, with defaults applied. */
export interface RedisConnection {
  url: string;
  connectTimeoutMs: number;
  clientOptions: Record<string, string | number | boolean>;
}

/** zod fields of {@linkcode RedisConnectionOptions}, to spread into a connector's schema. */
export const connectionFields = {
  url: z.string().regex(/^rediss?:\/\/\S*$/, "expected a redis:// or rediss:// URL"),
  connectTimeoutMs: z.number().int().safe().positive().default(5_000),
  clientOptions: z.record(z.string(), z.union([z.string(), z.number().finite(), z.boolean()]))
    .default(
      {},
    ),
};

/**
 * A client for a validated connection. A command fails after `maxRetriesPerRequest` reconnection
 * attempts instead of queueing while the server is down, so callers see the outage; connection
 * errors surface through commands, not as unhandled `error` events.
 */
export async function createRedis(
  c: RedisConnection,
  name: string,
  maxRetriesPerRequest = 1,
): Promise<Redis> {
  const { Redis } = await loadIoredis();
  const redis = new Redis(c.url, {
    ...c.clientOptions,
    connectTimeout: c.connectTimeoutMs,
    maxRetriesPerRequest,
    connectionName: name.replace(/[^\w.:-]/g, "_"),
  });
  redis.on("error", () => {});
  return redis;
}
