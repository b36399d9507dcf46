// Pinned ioredis specifier: the only place Sluice names it. The module is loaded on first use
// (`loadIoredis()`, in the worker or thread that opens a client), so that importing Sluice does not
// load ioredis in every worker (its `debug` dependency lists the environment when it loads, which
// needs unrestricted `env`). Types are exported as types only.
export type { Cluster, ClusterOptions, Redis, RedisOptions } from "npm:ioredis@5.11.1";

/** The ioredis classes Sluice uses. */
export interface Ioredis {
  /** A standalone client. */
  Redis: typeof import("npm:ioredis@5.11.1").Redis;
  /** A cluster client. */
  Cluster: typeof import("npm:ioredis@5.11.1").Cluster;
}

let loaded: Promise<Ioredis> | undefined;

/** The ioredis classes, loaded once on first use. */
export function loadIoredis(): Promise<Ioredis> {
  loaded ??= (async () => {
    // Inline on purpose: Sluice is imported by URL, where no import map applies.
    // deno-lint-ignore no-import-prefix
    const ioredis = await import("npm:ioredis@5.11.1");
    return { Redis: ioredis.Redis, Cluster: ioredis.Cluster };
  })();
  return loaded;
}
