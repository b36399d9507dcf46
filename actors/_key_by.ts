// The processor behind `flow.keyBy(fn)`: sets each record's key from an inline function.
import { z } from "./_deps.ts";
import { defineProcessor } from "./stage.ts";
import type { StageRef } from "./stage_ref.ts";
import type { StreamRecord } from "./record.ts";
import { compileFn, inlineFn } from "./inline_fn.ts";

type KeyFn = (value: unknown, record: StreamRecord<unknown>) => unknown;

/** Sets `key` from the configured function; a key that is not a string/number is an error. */
export const keyByStage = defineProcessor({
  name: "keyBy",
  config: z.object({ fn: z.string() }).strict(),
  open(config) {
    const fn = compileFn<KeyFn>({ fn: config.fn });
    return {
      process(record: StreamRecord<unknown>) {
        const key = fn(record.value, record);
        if (typeof key !== "string" && typeof key !== "number") {
          throw new TypeError(
            `Cannot key record: key function returned ${key === null ? "null" : typeof key}`,
          );
        }
        return { ...record, key: String(key) };
      },
    };
  },
});

/** A reference to the keyBy processor. */
export function keyByRef<T>(fn: (value: T, record: StreamRecord<T>) => unknown): StageRef<T, T> {
  return {
    kind: "processor",
    module: import.meta.url,
    export: "keyByStage",
    config: inlineFn(fn, "keyBy"),
    options: { name: "keyBy" },
  };
}
