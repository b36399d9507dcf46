// Stages used by the runtime-driven processor tests where no builder can make the input needed.
// Imports the runtime modules directly, not mod.ts: a worker loading this file gets only read
// access to its code, and mod.ts also loads the connectors' npm clients.
import { z } from "../../../actors/_deps.ts";
import type { StreamRecord } from "../../../actors/record.ts";
import { defineProcessor } from "../../../actors/stage.ts";

/**
 * Sets each record's `ts` from `value.at` when that field is present (any number: NaN and
 * Infinity too), so tests can feed event-time stages records with a non-finite timestamp, which
 * no source accepts.
 */
export const setTs = defineProcessor({
  name: "setTs",
  config: z.object({}).strict(),
  open() {
    return {
      process(record: StreamRecord<{ at?: number }>) {
        const at = record.value.at;
        return typeof at === "number" ? { ...record, ts: at } : record;
      },
    };
  },
});
