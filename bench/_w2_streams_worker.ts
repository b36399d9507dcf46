// Runs the W2 streams baseline in this worker, on the generator options it is sent, and posts back
// what `streams` returned: the time of its run, measured here, and the totals. `bench/w2.ts` sends
// a fresh worker one run (cold), and one worker kept for the whole benchmark every run (warm).
/// <reference lib="deno.worker" />
import type { GeneratorOptions } from "../connectors/generator/mod.ts";
import { streams } from "./_w2_streams.ts";

self.onmessage = async (e: MessageEvent<GeneratorOptions>) => {
  self.postMessage(await streams(e.data));
};
