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

/** Rejects, naming `what`, when `p` has not settled within `ms`; else settles as it does. */
export async function settles<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  const result = await within(p, ms);
  if (result === "timed out") throw new Error(`${what} did not settle within ${ms} ms`);
  return result;
}

/** Resolves once `cond()` holds, checked every `stepMs`; throws, naming `what`, after `ms`. */
export async function until(
  cond: () => boolean,
  ms = 5000,
  what = "a condition",
  stepMs = 5,
): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(stepMs);
  }
}
