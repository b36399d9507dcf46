// State kept in the main thread's memory: the public `memoryStateBackend()` copies what it is
// given; the pipeline's own default does not. The runtime hands it snapshots fresh off a message
// channel that nothing else holds, so a copy per checkpoint (all open windows, say) is pure cost.
import type { StateBackend } from "./state_backend.ts";

/** A map-backed state backend; `copyIn` copies values as they are set (reads always copy). */
export function inMemoryState(copyIn: boolean): StateBackend & { readonly size: number } {
  const map = new Map<string, unknown>();
  return {
    get size() {
      return map.size;
    },
    getMany: (keys) => Promise.resolve(keys.map((k) => structuredClone(map.get(k)))),
    setMany(entries) {
      for (const [k, v] of entries) map.set(k, copyIn ? structuredClone(v) : v);
      return Promise.resolve();
    },
  };
}
