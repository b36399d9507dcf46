// The zod schema of a store descriptor (what sinks and `enrich` receive in their worker instead of
// a Store object), and its normalisation at build time.
import { z } from "../actors/_deps.ts";
import type { StoreDescriptor } from "./open_store.ts";
import { DEFAULT_KV_PATH } from "./kv/kv_store.ts";

const options = z.record(z.string(), z.unknown());
const positive = z.number().positive().finite();
const count = z.number().int().safe().positive();

/** Validates a {@linkcode StoreDescriptor}. */
export const storeDescriptorSchema: z.ZodType<StoreDescriptor> = z.discriminatedUnion("backend", [
  z.object({
    backend: z.literal("kv"),
    path: z.string().min(1).optional(),
    namespace: z.array(z.string()).optional(),
  }).strict(),
  z.object({
    backend: z.literal("redis"),
    url: z.string().regex(/^rediss?:\/\/\S*$/, "expected a redis:// or rediss:// URL").optional(),
    cluster: z.object({ nodes: z.array(z.string().min(1)).min(1) }).strict().optional(),
    keyPrefix: z.string().optional(),
    layout: z.enum(["value", "hash"]).optional(),
    compressAboveBytes: z.number().nonnegative().finite().optional(),
    connectTimeoutMs: count.optional(),
    maxRetriesPerRequest: z.number().int().safe().nonnegative().optional(),
    clientOptions: options.optional(),
  }).strict(),
  z.object({
    backend: z.literal("mongo"),
    url: z.string().regex(/^mongodb(\+srv)?:\/\/\S+$/, "expected a mongodb:// URL").optional(),
    db: z.string().min(1).optional(),
    collection: z.string().min(1).optional(),
    compressAboveBytes: z.number().nonnegative().finite().optional(),
    serverSelectionTimeoutMs: count.optional(),
    connectTimeoutMs: count.optional(),
    clientOptions: options.optional(),
  }).strict(),
  z.object({
    backend: z.literal("memory"),
    name: z.string().min(1).optional(),
    maxEntries: count.optional(),
    maxBytes: count.optional(),
    ttlMs: positive.optional(),
  }).strict(),
]) as z.ZodType<StoreDescriptor>;

/**
 * A descriptor ready to cross to a worker: a KV path made absolute (workers share the working
 * directory, but may not be allowed to read it) and its directory created (the worker may not).
 */
export function normalizeDescriptor(d: StoreDescriptor): StoreDescriptor {
  if (d.backend !== "kv") return d;
  const path = absolute(d.path ?? DEFAULT_KV_PATH);
  if (path !== ":memory:") {
    try {
      Deno.mkdirSync(path.replace(/[/\\][^/\\]*$/, ""), { recursive: true });
    } catch {
      // Reported when the store opens.
    }
  }
  return { ...d, path };
}

function absolute(path: string): string {
  if (path === ":memory:" || path.startsWith("/") || /^[A-Za-z]:[/\\]/.test(path)) return path;
  try {
    return `${Deno.cwd()}/${path.replace(/^\.\//, "")}`;
  } catch {
    return path; // no read permission for the cwd: workers share it anyway
  }
}
