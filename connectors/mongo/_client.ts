// Shared by the MongoDB source and sink: connection config as zod fields, the client factory and
// the classification of driver errors. The URL (which may hold credentials) is handed to the
// driver only and never put in messages.
import { z } from "../../actors/_deps.ts";
import { loadMongodb, type MongoClient, mongodbLoaded } from "../../stores/mongo/_deps.ts";

/** {@linkcode MongoConnectionOptions} as validated, with defaults applied. */
export interface MongoConnection {
  url: string;
  db: string;
  collection: string;
  serverSelectionTimeoutMs: number;
  connectTimeoutMs: number;
  clientOptions: Record<string, string | number | boolean>;
}

/** zod fields of {@linkcode MongoConnectionOptions}, to spread into a connector's schema. */
export const connectionFields = {
  url: z.string().regex(/^mongodb(\+srv)?:\/\/\S+$/, "expected a mongodb:// or mongodb+srv:// URL"),
  db: z.string().min(1).regex(/^[^/\\. "$]+$/, "expected a database name"),
  collection: z.string().min(1).regex(/^[^$]+$/, "expected a collection name"),
  serverSelectionTimeoutMs: z.number().int().positive().default(5_000),
  connectTimeoutMs: z.number().int().positive().default(5_000),
  clientOptions: z.record(z.string(), z.union([z.string(), z.number(), z.boolean()])).default(
    {},
  ),
};

/** A client for a validated connection (not yet connected: the driver connects on first use). */
export async function createClient(c: MongoConnection): Promise<MongoClient> {
  const { MongoClient } = await loadMongodb();
  return new MongoClient(c.url, {
    ...c.clientOptions,
    serverSelectionTimeoutMS: c.serverSelectionTimeoutMs,
    connectTimeoutMS: c.connectTimeoutMs,
  });
}

/** Server error codes that mean "try again later", not "this write is wrong". */
const TRANSIENT_CODES = new Set([
  6, // HostUnreachable
  7, // HostNotFound
  89, // NetworkTimeout
  91, // ShutdownInProgress
  189, // PrimarySteppedDown
  262, // ExceededTimeLimit
  9001, // SocketException
  10107, // NotWritablePrimary
  11600, // InterruptedAtShutdown
  11602, // InterruptedDueToReplStateChange
  13435, // NotPrimaryNoSecondaryOk
  13436, // NotPrimaryOrSecondary
  64, // WriteConcernFailed
  50, // MaxTimeMSExpired
]);

/** Whether a driver error is about the connection or server state rather than the data. */
export function isTransient(error: unknown): boolean {
  // Driver errors exist only once the driver is loaded (by createClient).
  const { MongoBulkWriteError, MongoError, MongoNetworkError, MongoServerSelectionError } =
    mongodbLoaded();
  if (error instanceof MongoNetworkError || error instanceof MongoServerSelectionError) return true;
  if (!(error instanceof MongoError)) return false;
  if (error.hasErrorLabel("RetryableWriteError") || error.hasErrorLabel("ResetPool")) return true;
  if (error instanceof MongoBulkWriteError && (error.writeErrors as unknown[]).length > 0) {
    return false;
  }
  const code = typeof error.code === "number" ? error.code : Number(error.code);
  if (TRANSIENT_CODES.has(code)) return true;
  return /topology (is )?(was )?(destroyed|closed)|connection .*closed|ECONNREFUSED|ECONNRESET/i
    .test(error.message);
}
