// The runtime's timers (actors/_timer.ts): the global ones on the main thread, AbortSignal-based in
// a worker; either way a cancelled one never fires and a stopped periodic one stops.
import assert from "node:assert/strict";
import { after, every } from "../../actors/_timer.ts";

const wait = (ms: number) => new Promise((r) => setTimeout(r, ms));

Deno.test("after() fires once unless cancelled; every() repeats until stopped (main thread)", async () => {
  const fired: string[] = [];
  after(10, () => fired.push("once"));
  after(10, () => fired.push("cancelled"))();
  let n = 0;
  const stop = every(5, () => {
    fired.push(`tick${++n}`);
    if (n === 3) stop();
  });
  await wait(80);
  assert.deepEqual(fired.filter((f) => !f.startsWith("tick")), ["once"]);
  assert.deepEqual(fired.filter((f) => f.startsWith("tick")), ["tick1", "tick2", "tick3"]);
});

Deno.test("after() and every() behave the same in a worker", async () => {
  const worker = new Worker(new URL("./fixtures/timer_worker.ts", import.meta.url), {
    type: "module",
  });
  try {
    const fired = await new Promise<string[]>((resolve, reject) => {
      worker.onmessage = (e) => resolve(e.data);
      worker.onerror = (e) => reject(new Error(e.message));
    });
    assert.deepEqual(fired.filter((f) => !f.startsWith("tick")), ["once"]);
    assert.deepEqual(fired.filter((f) => f.startsWith("tick")), ["tick1", "tick2", "tick3"]);
  } finally {
    worker.terminate();
  }
});
