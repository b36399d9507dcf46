// Sleeping that wakes early when a signal aborts: backoffs, polling sources, reconnects.
import { after } from "./_timer.ts";

/** Resolves after `ms` (a timer even for 0: a polling loop yields), or when `signal` aborts. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve();
    const done = () => {
      cancel();
      signal?.removeEventListener("abort", done);
      resolve();
    };
    const cancel = after(ms, done);
    signal?.addEventListener("abort", done, { once: true });
  });
}
