// The hosts a Redis or MongoDB address names: for a worker's `net` permission and for error
// messages that must not carry credentials.

/** The `host:port` of a `redis://` or `rediss://` URL (default port 6379). */
export function redisHost(url: string): string | undefined {
  const match = /^rediss?:\/\/(?:[^@/]*@)?(\[[^\]]+\]|[^:/?]+)(?::(\d+))?/.exec(url);
  return match ? `${match[1]}:${match[2] ?? "6379"}` : undefined;
}

/** The `host:port` list of a `mongodb://` URL (default port 27017); `undefined` for `+srv`. */
export function mongoHosts(url: string): string[] | undefined {
  const match = /^mongodb(\+srv)?:\/\/(?:[^@/]*@)?([^/?]*)/.exec(url);
  if (!match || match[1]) return undefined;
  return match[2]!.split(",").map((h) => h.trim()).filter((h) => h.length > 0)
    .map((h) => /:\d+$/.test(h) ? h : `${h}:27017`);
}
