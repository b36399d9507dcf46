// What the connector conformance suite reads from the operating system about this process: its
// sockets to a port and how far it read a file (both from /proc, so every worker thread counts),
// and a port nothing listens on.

/** A local TCP port nothing listens on (taken and released at once). */
export function freePort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  listener.close();
  return port;
}

/** Inodes of the sockets this process holds open (its file descriptors, all threads). */
function ownSocketInodes(): Set<string> {
  const inodes = new Set<string>();
  for (const entry of Deno.readDirSync("/proc/self/fd")) {
    try {
      const link = Deno.readLinkSync(`/proc/self/fd/${entry.name}`);
      const m = /^socket:\[(\d+)\]$/.exec(link);
      if (m) inodes.add(m[1]!);
    } catch { /* closed meanwhile */ }
  }
  return inodes;
}

/**
 * How many TCP sockets this process (every worker thread included) holds to remote `port`, in any
 * state, from /proc/self/fd and /proc/self/net/tcp{,6}. Deno's resource sanitizer does not see the
 * sockets of npm drivers (node:net); this does.
 */
export function socketsTo(port: number): number {
  const own = ownSocketInodes();
  const hexPort = port.toString(16).toUpperCase().padStart(4, "0");
  let n = 0;
  for (const table of ["/proc/self/net/tcp", "/proc/self/net/tcp6"]) {
    let text = "";
    try {
      text = Deno.readTextFileSync(table);
    } catch {
      continue;
    }
    for (const line of text.split("\n").slice(1)) {
      const cols = line.trim().split(/\s+/);
      if (cols.length < 10) continue;
      if (cols[2]!.split(":")[1] === hexPort && own.has(cols[9]!)) n++;
    }
  }
  return n;
}

/**
 * The offset of this process's open descriptors on `path` (from /proc/self/fdinfo): how far the
 * process has read the file. The largest one when several are open; -1 when none is.
 */
export function readOffset(path: string): number {
  let best = -1;
  for (const entry of Deno.readDirSync("/proc/self/fd")) {
    try {
      if (Deno.readLinkSync(`/proc/self/fd/${entry.name}`) !== path) continue;
      const info = Deno.readTextFileSync(`/proc/self/fdinfo/${entry.name}`);
      best = Math.max(best, Number(/^pos:\s*(\d+)/m.exec(info)?.[1] ?? -1));
    } catch { /* closed meanwhile */ }
  }
  return best;
}
