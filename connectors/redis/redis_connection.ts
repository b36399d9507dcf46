/**
 * Connection options shared by the Redis Streams source and sink, and the least worker
 * permissions a Redis stage needs.
 *
 * @module
 */
import type { StagePermissions } from "../../actors/stage.ts";
import { redisHost } from "../../stores/_hosts.ts";

/** Connection options common to {@linkcode redisStreamSource} and {@linkcode redisStreamSink}. */
export interface RedisConnectionOptions {
  /**
   * Server URL, `redis://[user:password@]host[:port][/db]` (`rediss://` for TLS). Credentials in it
   * go to ioredis only: they never appear in errors, logs or metrics.
   */
  url: string;
  /** Time to establish a connection, ms. Default 5000. */
  connectTimeoutMs?: number;
  /**
   * Further ioredis options with scalar values, passed through as they are (for example
   * `{ db: 2, connectionName: "etl" }`).
   */
  clientOptions?: Record<string, string | number | boolean>;
}

/**
 * The least Deno permissions of a Redis stage's worker: `net` to the server of the URL and `env`.
 * The environment cannot be narrowed to a list: ioredis loads the `debug` package, which lists
 * every environment variable (`Object.keys(process.env)`) when it loads, and Deno allows that only
 * with unrestricted `env`. `redisStreamSource()` and `redisStreamSink()` set these on their stage.
 *
 * @param url The server URL.
 * @returns Permissions for a stage's `permissions` option.
 *
 * @example
 * ```ts
 * import { redisPermissions } from "@sluice/sluice";
 * import assert from "node:assert/strict";
 *
 * const p = redisPermissions("redis://:secret@cache.internal/0");
 * assert.deepEqual(typeof p === "object" && p.net, ["cache.internal:6379"]);
 * ```
 */
export function redisPermissions(url: string): StagePermissions {
  const host = redisHost(url);
  return { net: host ? [host] : true, env: true };
}
