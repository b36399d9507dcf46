// Shared by the MongoDB source and sink: connection config as zod fields, the client factory and
// the classification of driver errors. The URL (which may hold credentials) is handed to the
// driver only and never put in messages.
import { z } from "../../actors/_deps.ts";
import { loadMongodb, type MongoClient } from "../../stores/mongo/_deps.ts";

/** The MongoDB store's classification: one for the driver. */
export { isTransient } from "../../stores/mongo/_transient.ts";

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
  serverSelectionTimeoutMs: z.number().int().safe().positive().default(5_000),
  connectTimeoutMs: z.number().int().safe().positive().default(5_000),
  clientOptions: z.record(z.string(), z.union([z.string(), z.number().finite(), z.boolean()]))
    .default(
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
