// Connecting a MongoStore and classifying driver errors. The URL may hold credentials: it goes to
// the driver only, messages name the hosts.
import { SluiceError } from "../../actors/errors.ts";
import { attemptOn, oneLine } from "../_faults.ts";
import { mongoHosts } from "../_hosts.ts";
import { loadMongodb, type MongoClient, type Mongodb } from "./_deps.ts";
import { isTransient } from "./_transient.ts";

export { isTransient };

/**
 * Environment variables the driver reads when a client is created (logging switches, and the
 * FaaS/Kubernetes detection of its handshake metadata); a worker without them fails NotCapable.
 */
export const MONGODB_ENV: readonly string[] = Object.freeze([
  "MONGODB_LOG_ALL",
  "MONGODB_LOG_CLIENT",
  "MONGODB_LOG_COMMAND",
  "MONGODB_LOG_CONNECTION",
  "MONGODB_LOG_MAX_DOCUMENT_LENGTH",
  "MONGODB_LOG_PATH",
  "MONGODB_LOG_SERVER_SELECTION",
  "MONGODB_LOG_TOPOLOGY",
  "KUBERNETES_SERVICE_HOST",
  "AWS_EXECUTION_ENV",
  "AWS_LAMBDA_FUNCTION_MEMORY_SIZE",
  "AWS_LAMBDA_RUNTIME_API",
  "AWS_REGION",
  "FUNCTIONS_WORKER_RUNTIME",
  "FUNCTION_MEMORY_MB",
  "FUNCTION_NAME",
  "FUNCTION_REGION",
  "FUNCTION_TIMEOUT_SEC",
  "K_SERVICE",
  "VERCEL",
  "VERCEL_REGION",
]);

/** What {@linkcode connect} needs. */
export interface Connection {
  url: string;
  serverSelectionTimeoutMs: number;
  connectTimeoutMs: number;
  clientOptions: Record<string, unknown>;
}

/** Where a connection goes, without credentials. */
export function target(url: string): string {
  return mongoHosts(url)?.join(",") ?? "the SRV cluster";
}

/**
 * Opens a client and waits until a server answers.
 *
 * @throws {SluiceError} `E_STORE` when no server can be reached.
 */
export async function connect(c: Connection): Promise<{ client: MongoClient; driver: Mongodb }> {
  const driver = await loadMongodb();
  const client = new driver.MongoClient(c.url, {
    serverSelectionTimeoutMS: c.serverSelectionTimeoutMs,
    connectTimeoutMS: c.connectTimeoutMs,
    ...c.clientOptions,
  });
  try {
    await client.connect();
  } catch (cause) {
    await client.close().catch(() => {});
    throw new SluiceError(
      "E_STORE",
      `Cannot open MongoStore at ${target(c.url)}: ${oneLine(cause)}`,
      { cause },
    );
  }
  return { client, driver };
}

/** Runs a driver call; a connection fault becomes a RetriableError. */
export function attempt<T>(what: string, where: string, call: () => Promise<T>): Promise<T> {
  return attemptOn("MongoDB", isTransient, what, where, call);
}
