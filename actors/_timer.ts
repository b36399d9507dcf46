// Timers of the actor runtime. In a worker they are made from `AbortSignal.timeout`: there, the
// first use of the global `setTimeout` or `setInterval` loads Deno's node:timers module, 5–10 ms of
// a worker's start-up (Deno 2.9), and none of the runtime's timers needs what it adds. Such a
// signal cannot be cleared, and each one that fires makes a DOMException (its reason) with a stack
// trace: a few µs, for a sender's linger timer on every batch that did not fill at once. So the
// timers of a worker wait in one queue, and one signal is armed for the earliest: a cancelled timer
// costs a queue entry, not a signal. A worker ends by being terminated, so no signal holds it
// open. On the main thread (inline mode, the supervisor) the global timers serve: cleared, they
// never hold the process open after a pipeline ends.

const inWorker = typeof (globalThis as { WorkerGlobalScope?: unknown }).WorkerGlobalScope ===
  "function";

/** A timer waiting in the worker's queue. */
interface Pending {
  /** When it is due, on the `performance.now()` clock. */
  at: number;
  /** Order of creation: of timers due at once, the first made runs first, as with setTimeout. */
  seq: number;
  /** Null once cancelled or run. */
  fn: (() => void) | null;
}

/** The worker's timers, a binary heap on `at`: the earliest first. */
const queue: Pending[] = [];

/** When the signals armed and not yet fired are due. */
const armed = new Set<number>();

let made = 0;

/** Whether `a` runs before `b`. */
function before(a: Pending, b: Pending): boolean {
  return a.at < b.at || (a.at === b.at && a.seq < b.seq);
}

/** Calls `fn` once after `ms`; returns what cancels it. */
export function after(ms: number, fn: () => void): () => void {
  if (!inWorker) {
    const id = setTimeout(fn, ms);
    return () => clearTimeout(id);
  }
  const timer: Pending = { at: performance.now() + Math.max(0, ms), seq: made++, fn };
  push(timer);
  arm();
  return () => {
    timer.fn = null;
  };
}

/** Arms a signal for the earliest live timer, unless one is armed for it or before it. */
function arm(): void {
  while (queue.length > 0 && queue[0]!.fn === null) pop();
  const first = queue[0];
  if (first === undefined) return;
  for (const at of armed) if (at <= first.at) return;
  const at = first.at;
  armed.add(at);
  const ms = Math.max(0, Math.ceil(at - performance.now()));
  AbortSignal.timeout(ms).addEventListener("abort", () => fire(at), { once: true });
}

/** Runs the timers due by now, in order of `at`, then arms for the next. */
function fire(at: number): void {
  armed.delete(at);
  const now = performance.now();
  while (queue.length > 0 && queue[0]!.at <= now) {
    const timer = pop();
    const fn = timer.fn;
    timer.fn = null;
    if (fn === null) continue;
    try {
      fn();
    } catch (error) {
      // As a throwing timer callback would: reported, without stopping the timers after it.
      queueMicrotask(() => {
        throw error;
      });
    }
  }
  arm();
}

function push(timer: Pending): void {
  queue.push(timer);
  let i = queue.length - 1;
  while (i > 0) {
    const parent = (i - 1) >> 1;
    if (!before(timer, queue[parent]!)) break;
    queue[i] = queue[parent]!;
    i = parent;
  }
  queue[i] = timer;
}

function pop(): Pending {
  const top = queue[0]!;
  const last = queue.pop()!;
  if (queue.length > 0) {
    let i = 0;
    for (;;) {
      const left = 2 * i + 1;
      if (left >= queue.length) break;
      const right = left + 1;
      const child = right < queue.length && before(queue[right]!, queue[left]!) ? right : left;
      if (!before(queue[child]!, last)) break;
      queue[i] = queue[child]!;
      i = child;
    }
    queue[i] = last;
  }
  return top;
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
