// Hosting of one task: a module Web Worker with least permissions, or inline on the main thread.
import type { StagePermissions } from "./stage.ts";
import type { FromTask, StageSpec, ToTask } from "./_protocol.ts";
import { Task } from "./_task.ts";
import { SluiceError } from "./errors.ts";

/** A running task as the supervisor sees it. */
export interface TaskHost {
  post(message: ToTask, transfer?: Transferable[]): void;
  terminate(): void;
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
  worker.onmessage = (e: MessageEvent<FromTask>) => onMessage(e.data);
  worker.onerror = (e: ErrorEvent) => {
    e.preventDefault();
    onCrash(e.message || "worker failed");
  };
  worker.onmessageerror = () => onCrash("a message could not be deserialised");
  return {
    post: (message, transfer = []) => worker.postMessage(message, transfer),
    terminate: () => worker.terminate(),
  };
}

/** Runs a task on the main thread, over a MessageChannel: same code, same protocol. */
export function inlineHost(onMessage: (m: FromTask) => void): TaskHost {
  const channel = new MessageChannel();
  const task = new Task({
    postMessage: (message, transfer = []) => channel.port1.postMessage(message, transfer),
  });
  channel.port1.onmessage = (e: MessageEvent<ToTask>) => task.handle(e.data);
  channel.port2.onmessage = (e: MessageEvent<FromTask>) => onMessage(e.data);
  return {
    post: (message, transfer = []) => channel.port2.postMessage(message, transfer),
    terminate: () => {
      task.kill();
      channel.port1.close();
      channel.port2.close();
    },
  };
}
