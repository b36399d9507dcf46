// Timers of the actor runtime. In a worker they are made from `AbortSignal.timeout`: there, the
// first use of the global `setTimeout` or `setInterval` loads Deno's node:timers module, 5–10 ms of
// a worker's start-up (Deno 2.9), and none of the runtime's timers needs what it adds. Such a timer
// cannot be cleared, so a cancelled one fires into nothing; a worker ends by being terminated, so
// none holds it open. On the main thread (inline mode, the supervisor) the global timers serve:
// cleared, they never hold the process open after a pipeline ends.

const inWorker = typeof (globalThis as { WorkerGlobalScope?: unknown }).WorkerGlobalScope ===
  "function";

/** Calls `fn` once after `ms`; returns what cancels it. */
export function after(ms: number, fn: () => void): () => void {
  if (!inWorker) {
    const id = setTimeout(fn, ms);
    return () => clearTimeout(id);
  }
  let live = true;
  AbortSignal.timeout(Math.max(0, ms)).addEventListener("abort", () => {
    if (!live) return;
    live = false;
    fn();
  }, { once: true });
  return () => {
    live = false;
  };
}

/** Calls `fn` every `ms` (from when it was called last); returns what stops it. */
export function every(ms: number, fn: () => void): () => void {
  let cancel = after(ms, tick);
  function tick(): void {
    cancel = after(ms, tick);
    fn();
  }
  return () => cancel();
}
