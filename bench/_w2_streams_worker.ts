// Runs the W2 streams baseline once in this (fresh) worker, on the generator options it is sent,
// and posts back what `streams` returned: the time of its run, measured here, and the totals.
/// <reference lib="deno.worker" />
import type { GeneratorOptions } from "../connectors/generator/mod.ts";
import { streams } from "./_w2_streams.ts";

self.onmessage = async (e: MessageEvent<GeneratorOptions>) => {
  self.postMessage(await streams(e.data));
};
