// Hosting of one task: a module Web Worker with least permissions, or inline on the main thread.
import type { StagePermissions } from "./stage.ts";
import type { FromTask, StageCounters, StageSpec, ToTask } from "./_protocol.ts";
import { CLOSE_TIMEOUT_MS, Task } from "./_task.ts";
import { SluiceError } from "./errors.ts";

/** A running task as the supervisor sees it. */
export interface TaskHost {
  post(message: ToTask, transfer?: Transferable[]): void;
  /**
   * Kills the task: it stops at once and closes its stages (bounded by `CLOSE_TIMEOUT_MS`), then
   * its worker ends. Resolves then, with the task's last counters, or after
   * {@linkcode KILL_GRACE_MS} at the latest, without.
   */
  terminate(): Promise<Counts | undefined>;
  /** Ends the task's worker at once, no hook called: for a worker that is hung or gone. */
  abort(): void;
}

/** How long a killed task may take to close its stages before its worker is ended anyway. */
export const KILL_GRACE_MS = CLOSE_TIMEOUT_MS + 500;

/** A task's counters, per stage of its chain. */
type Counts = Record<string, StageCounters>;

/** Waits for `closed` after `kill`, at most {@linkcode KILL_GRACE_MS}; `closed()` ends the wait. */
function killWaiter(): {
  ended: Promise<Counts | undefined>;
  closed: (counters?: Counts) => void;
} {
  let closed!: (counters?: Counts) => void;
  const ended = new Promise<Counts | undefined>((resolve) => {
    const timer = setTimeout(() => resolve(undefined), KILL_GRACE_MS);
    closed = (counters) => {
      clearTimeout(timer);
      resolve(counters);
    };
  });
  return { ended, closed };
}

const RUNTIME_ROOT = new URL("../", import.meta.url);

/** Throws a clear error when the unstable APIs workers need were not enabled. */
export function assertUnstableFlags(): void {
  // Worker `deno.permissions` without --unstable-worker-options exits the process (code 70)
  // instead of throwing, so it must be checked first. Deno exposes no direct probe for that flag;
  // it is enabled together with `kv` (deno.json "unstable", or both flags on the command line).
  if (typeof (Deno as { openKv?: unknown }).openKv !== "function") {
    throw new SluiceError(
      "E_UNSTABLE",
      "Cannot start workers: Deno was run without --unstable-kv --unstable-worker-options " +
        '(pass both flags, or set "unstable": ["kv", "worker-options"] in deno.json)',
    );
  }
}

function merge(
  into: Set<string> | true,
  extra: boolean | string[] | undefined,
): Set<string> | true {
  if (into === true || extra === true) return true;
  for (const x of extra || []) into.add(x);
  return into;
}

/** The Deno permissions of a worker: the union of its chain's, plus read access to its code. */
export function workerPermissions(chain: StageSpec[]): Deno.PermissionOptionsObject | "inherit" {
  const wanted = chain.map((s) => s.permissions ?? "none");
  if (wanted.includes("inherit")) return "inherit";
  const sets: Record<string, Set<string> | true> = {};
  const code = new Set<string>();
  for (const url of [RUNTIME_ROOT.href, ...chain.map((s) => s.module)]) {
    const u = new URL(url);
    if (u.protocol === "file:") code.add(decodeURIComponent(u.pathname));
    else if (u.protocol === "https:" || u.protocol === "http:") code.add(u.host);
  }
  for (const p of wanted as Exclude<StagePermissions, "inherit">[]) {
    if (p === "none") continue;
    for (const [name, value] of Object.entries(p)) {
      sets[name] = merge(sets[name] ?? new Set(), value as boolean | string[]);
    }
  }
  const files = [...code].filter((c) => c.startsWith("/"));
  const hosts = [...code].filter((c) => !c.startsWith("/"));
  sets.read = merge(sets.read ?? new Set(), files);
  if (hosts.length > 0) sets.import = merge(sets.import ?? new Set(), hosts);
  const out: Record<string, boolean | string[]> = {};
  for (const name of ["read", "write", "net", "env", "run", "sys", "ffi", "import"]) {
    const v = sets[name];
    out[name] = v === undefined ? false : v === true ? true : [...v];
  }
  return out as Deno.PermissionOptionsObject;
}

/** Starts a task in a module worker named `stage#i`. */
export function workerHost(
  name: string,
  chain: StageSpec[],
  onMessage: (m: FromTask) => void,
  onCrash: (message: string) => void,
): TaskHost {
  const worker = new Worker(new URL("./_worker_main.ts", import.meta.url), {
    type: "module",
    name,
    deno: { permissions: workerPermissions(chain) },
  } as WorkerOptions);
  let kill: ReturnType<typeof killWaiter> | undefined;
  worker.onmessage = (e: MessageEvent<FromTask>) => {
    if (e.data.t === "closed") kill?.closed(e.data.counters);
    else onMessage(e.data);
  };
  worker.onerror = (e: ErrorEvent) => {
    e.preventDefault();
    onCrash(e.message || "worker failed");
  };
  worker.onmessageerror = () => onCrash("a message could not be deserialised");
  let ended: Promise<Counts | undefined> | undefined;
  return {
    post: (message, transfer = []) => worker.postMessage(message, transfer),
    terminate: () => {
      if (ended) return ended;
      kill = killWaiter();
      worker.postMessage({ t: "kill" } satisfies ToTask);
      ended = kill.ended.then((counters) => {
        worker.terminate();
        return counters;
      });
      return ended;
    },
    abort: () => {
      worker.terminate();
      kill?.closed();
      ended ??= Promise.resolve(undefined);
    },
  };
}

/** Runs a task on the main thread, over a MessageChannel: same code, same protocol. */
export function inlineHost(onMessage: (m: FromTask) => void): TaskHost {
  const channel = new MessageChannel();
  const task = new Task({
    postMessage: (message, transfer = []) => channel.port1.postMessage(message, transfer),
  });
  let kill: ReturnType<typeof killWaiter> | undefined;
  channel.port1.onmessage = (e: MessageEvent<ToTask>) => task.handle(e.data);
  channel.port2.onmessage = (e: MessageEvent<FromTask>) => {
    if (e.data.t === "closed") kill?.closed(e.data.counters);
    else onMessage(e.data);
  };
  const end = () => {
    channel.port1.close();
    channel.port2.close();
  };
  let ended: Promise<Counts | undefined> | undefined;
  return {
    post: (message, transfer = []) => channel.port2.postMessage(message, transfer),
    // As in a worker, the kill comes after the messages sent before it (acks the task passes on
    // before it closes its channels); the control channel stays open until it reported its stages
    // closed.
    terminate: () => {
      if (ended) return ended;
      kill = killWaiter();
      channel.port2.postMessage({ t: "kill" } satisfies ToTask);
      ended = kill.ended.then((counters) => {
        end();
        return counters;
      });
      return ended;
    },
    abort: () => {
      void task.kill();
      end();
      kill?.closed();
      ended ??= Promise.resolve(undefined);
    },
  };
}
