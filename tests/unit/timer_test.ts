// The runtime's timers (actors/_timer.ts): the global ones on the main thread, one queue under one
// armed AbortSignal in a worker; either way they fire in order of when they are due, a cancelled
// one never fires and a stopped periodic one stops.
import assert from "node:assert/strict";
import { expected, timerScenario } from "./fixtures/timer_scenario.ts";

function check(fired: string[]): void {
  const timers = fired.filter((f) => !f.startsWith("tick"));
  assert.deepEqual(timers.filter((f) => f !== "nested"), expected.timers);
  assert.equal(timers.filter((f) => f === "nested").length, 1);
  assert.deepEqual(fired.filter((f) => f.startsWith("tick")), expected.ticks);
}

Deno.test("after() fires in order unless cancelled; every() repeats until stopped (main thread)", async () => {
  check(await timerScenario());
});

Deno.test("after() and every() behave the same in a worker", async () => {
  const worker = new Worker(new URL("./fixtures/timer_worker.ts", import.meta.url), {
    type: "module",
  });
  try {
    check(
      await new Promise<string[]>((resolve, reject) => {
        worker.onmessage = (e) => resolve(e.data);
        worker.onerror = (e) => reject(new Error(e.message));
      }),
    );
  } finally {
    worker.terminate();
  }
});
