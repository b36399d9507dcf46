// The hosts a MongoDB URL names, for the worker's net permission.

/** The `host:port` list of a `mongodb://` URL (default port 27017); `undefined` for `+srv`. */
export function mongoHosts(url: string): string[] | undefined {
  const match = /^mongodb(\+srv)?:\/\/(?:[^@/]*@)?([^/?]*)/.exec(url);
  if (!match || match[1]) return undefined;
  return match[2]!.split(",").map((h) => h.trim()).filter((h) => h.length > 0)
    .map((h) => /:\d+$/.test(h) ? h : `${h}:27017`);
}
