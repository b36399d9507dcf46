/**
 * Connection options shared by the MongoDB source and sink, and the least worker permissions a
 * MongoDB stage needs.
 *
 * @module
 */
import type { StagePermissions } from "../../actors/stage.ts";
import { MONGODB_ENV } from "../../stores/mongo/_client.ts";
import { mongoHosts } from "../../stores/_hosts.ts";

/** Connection options common to {@linkcode mongoSource} and {@linkcode mongoSink}. */
export interface MongoConnectionOptions {
  /**
   * Connection string, `mongodb://[user:password@]host[:port][,host…]/…`. Credentials in it go to
   * the driver only: they never appear in errors, logs or metrics.
   */
  url: string;
  /** Database name. */
  db: string;
  /** Collection name. */
  collection: string;
  /** How long to look for a usable server before an operation fails, ms. Default 5000. */
  serverSelectionTimeoutMs?: number;
  /** Time to establish a TCP connection, ms. Default 5000. */
  connectTimeoutMs?: number;
  /**
   * Further `MongoClient` options with scalar values, passed through as they are (for example
   * `{ tls: true, appName: "etl", authSource: "admin" }`). Options naming files (`tlsCAFile`)
   * need `read` permission for the worker too.
   */
  clientOptions?: Record<string, string | number | boolean>;
}

export { MONGODB_ENV };

/**
 * The least Deno permissions of a MongoDB stage's worker: `net` to the hosts of the URL (any
 * host for `mongodb+srv://`, whose hosts come from DNS), `env` for the few variables the driver
 * looks up ({@linkcode MONGODB_ENV}) and `sys: ["osRelease"]` for the handshake's OS metadata.
 * `mongoSource()` and `mongoSink()` set them on their stage.
 *
 * @param url The connection string.
 * @returns Permissions for a stage's `permissions` option.
 *
 * @example
 * ```ts
 * import { mongoPermissions } from "@sluice/sluice";
 * import assert from "node:assert/strict";
 *
 * const p = mongoPermissions("mongodb://u:secret@db1,db2:27018/app");
 * assert.deepEqual(typeof p === "object" && p.net, ["db1:27017", "db2:27018"]);
 * ```
 */
export function mongoPermissions(url: string): StagePermissions {
  return { net: mongoHosts(url) ?? true, env: [...MONGODB_ENV], sys: ["osRelease"] };
}
