// Waiting helpers for tests of runs that may hang: a hang must fail one test, not the whole run.

/** Resolves after `ms`. */
export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Resolves with the promise's value, or "timed out" after `ms` (the timer is always cleared). */
export async function within<T>(p: Promise<T>, ms: number): Promise<T | "timed out"> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<"timed out">((r) => timer = setTimeout(() => r("timed out"), ms));
  try {
    return await Promise.race([p, late]);
  } finally {
    clearTimeout(timer);
  }
}

/** Resolves once `cond()` holds, checked every `stepMs`; throws after `ms`. */
export async function until(cond: () => boolean, ms = 5000, stepMs = 5): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error("condition not met in time");
    await sleep(stepMs);
  }
}
