// Addresses of the real servers that integration tests talk to (started by scripts/services.sh).
//
// Each address comes from its environment variable first (SLUICE_KAFKA_BROKERS, SLUICE_REDIS_URL,
// SLUICE_MONGO_URL), then from the services.env file that `bash scripts/services.sh up` writes
// (in $SLUICE_SERVICES_DIR, by default ~/.cache/sluice/run).

/** Where the integration servers listen. */
export interface Services {
  /** Kafka bootstrap brokers, e.g. `["127.0.0.1:9092"]` (SLUICE_KAFKA_BROKERS, comma-separated). */
  kafkaBrokers: string[];
  /** Redis URL, e.g. `redis://127.0.0.1:6390` (SLUICE_REDIS_URL). */
  redisUrl: string;
  /** MongoDB URL, e.g. `mongodb://127.0.0.1:27018` (SLUICE_MONGO_URL). */
  mongoUrl: string;
}

/** The directory of services.sh's pids, logs, data and services.env ($SLUICE_SERVICES_DIR). */
export function servicesDir(): string {
  const dir = Deno.env.get("SLUICE_SERVICES_DIR");
  if (dir) return dir;
  const cache = Deno.env.get("SLUICE_CACHE_DIR") ??
    `${Deno.env.get("HOME") ?? Deno.env.get("USERPROFILE") ?? "."}/.cache/sluice`;
  return `${cache}/run`;
}

/** The services.env file `scripts/services.sh up` writes. */
export function servicesEnvPath(): string {
  return `${servicesDir()}/services.env`;
}

function readEnvFile(path: string): Map<string, string> {
  const out = new Map<string, string>();
  let text: string;
  try {
    text = Deno.readTextFileSync(path);
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return out;
    throw err;
  }
  for (const raw of text.split("\n")) {
    const line = raw.trim();
    if (line === "" || line.startsWith("#")) continue;
    const eq = line.indexOf("=");
    if (eq <= 0) continue;
    const key = line.slice(0, eq).replace(/^export\s+/, "").trim();
    out.set(key, line.slice(eq + 1).trim().replace(/^(["'])(.*)\1$/, "$2"));
  }
  return out;
}

/**
 * The integration servers' addresses: environment variables first, services.env second.
 * Throws an error that says to run `bash scripts/services.sh up` when an address is unknown.
 */
export function services(): Services {
  const path = servicesEnvPath();
  let file: Map<string, string> | undefined;
  const get = (key: string): string => {
    const fromEnv = Deno.env.get(key);
    if (fromEnv) return fromEnv;
    file ??= readEnvFile(path);
    const fromFile = file.get(key);
    if (fromFile) return fromFile;
    throw new Error(
      `${key} is not set and ${path} has no such line: start the test servers with ` +
        "`bash scripts/services.sh up` (or export SLUICE_KAFKA_BROKERS, SLUICE_REDIS_URL, " +
        "SLUICE_MONGO_URL)",
    );
  };
  return {
    kafkaBrokers: get("SLUICE_KAFKA_BROKERS").split(",").map((b) => b.trim()).filter(Boolean),
    redisUrl: get("SLUICE_REDIS_URL"),
    mongoUrl: get("SLUICE_MONGO_URL"),
  };
}

/** A name no earlier run used (topics, groups, databases, key prefixes): `prefix-<time>-<rand>`. */
export function uniqueName(prefix: string): string {
  const rand = crypto.getRandomValues(new Uint32Array(1))[0]!.toString(36);
  return `${prefix}-${Date.now().toString(36)}-${rand}`;
}
