// CPU seconds per thread of this process, from /proc (Linux; elsewhere empty): to see where a
// side spent its CPU — main thread, V8 helper threads (GC, compiler) and each worker.
import process from "node:process";

/** Thread id → [thread name, CPU seconds so far]. */
export type ThreadTimes = Map<string, [string, number]>;

/** Samples the CPU time of every live thread into `into` (a thread that ended keeps its last). */
export function threadTimes(into: ThreadTimes = new Map()): ThreadTimes {
  try {
    for (const e of Deno.readDirSync("/proc/self/task")) {
      const stat = Deno.readTextFileSync(`/proc/self/task/${e.name}/stat`);
      const name = stat.slice(stat.indexOf("(") + 1, stat.lastIndexOf(")"));
      const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      into.set(e.name, [name, (Number(f[11]) + Number(f[12])) / 100]);
    }
  } catch { /* not Linux, or a thread ended while listed */ }
  return into;
}

/**
 * Per-thread CPU between two samples: main thread, V8 helpers (GC, compiler) and workers in start
 * order; workers that used at most `minCpu` seconds are left out.
 */
export function threadReport(before: ThreadTimes, after: ThreadTimes, minCpu = -1): string {
  let main = 0, helpers = 0;
  const workers: [number, number][] = [];
  for (const [tid, [name, t]] of after) {
    const cpu = t - (before.get(tid)?.[1] ?? 0);
    if (name.startsWith("worker-")) workers.push([Number(name.slice(7)), cpu]);
    else if (tid === String(Deno.pid)) main += cpu;
    else helpers += cpu;
  }
  workers.sort((a, b) => a[0] - b[0]);
  const list = workers.filter(([, c]) => c > minCpu).map(([, c]) => c.toFixed(2)).join(" ");
  return `main ${main.toFixed(2)}, V8 helpers ${helpers.toFixed(2)}, workers [${list}]`;
}

/** Samples thread times every 100 ms until `stop()`, which returns the per-thread report. */
export function sampleThreads(): { stop(): string } {
  const before = threadTimes();
  const during = threadTimes();
  const timer = setInterval(() => threadTimes(during), 100);
  return {
    stop() {
      clearInterval(timer);
      const after = threadTimes(during);
      return threadReport(before, after, 0.005);
    },
  };
}

/** CPU seconds (user + system, all threads) since `since`. */
export function cpuSince(since: { user: number; system: number }): number {
  const d = process.cpuUsage(since);
  return (d.user + d.system) / 1e6;
}
