// The store conformance suite (tests/_store_conformance.ts) against the embedded backends: Deno KV
// in memory and in a file, and the memory store. Redis and MongoDB run it in
// tests/integration/store_conformance_test.ts.
import { KvStore } from "../../stores/kv/mod.ts";
import { MemoryStore } from "../../stores/memory/mod.ts";
import { storeConformance } from "../_store_conformance.ts";

const kvSupports = {
  increment: true,
  incrementMany: true,
  mergeMany: true,
  compression: false,
  keyLimitBytes: 1_980,
};

storeConformance("KvStore (:memory:)", {
  supports: { ...kvSupports, reopen: false },
  fixture() {
    return Promise.resolve({
      open: () => KvStore.open(":memory:"),
      openOther: () => KvStore.open(":memory:"),
      cleanup: () => Promise.resolve(),
    });
  },
});

storeConformance("KvStore (file)", {
  supports: { ...kvSupports, reopen: true },
  async fixture() {
    // A temp directory outside the repository; the other namespace is nested in this one.
    const dir = await Deno.makeTempDir({ prefix: "sluice-conformance-" });
    const path = `${dir}/state/store.kv`;
    return {
      open: () => KvStore.open(path, { namespace: ["conformance"] }),
      openOther: () => KvStore.open(path, { namespace: ["conformance", "other"] }),
      cleanup: () => Deno.remove(dir, { recursive: true }),
    };
  },
});

let memoryStores = 0;

storeConformance("MemoryStore", {
  supports: {
    increment: true,
    incrementMany: true,
    mergeMany: true,
    reopen: true, // handles on one named store share its entries
    compression: false,
  },
  fixture() {
    let now = 0; // a test clock starts at 0
    const name = `conformance-${++memoryStores}`;
    const open = (n: string) => Promise.resolve(new MemoryStore({ name: n, now: () => now }));
    return Promise.resolve({
      open: () => open(name),
      openOther: () => open(`${name}:other`),
      advance(ms: number) {
        now += ms;
      },
      cleanup() {
        for (const n of [name, `${name}:other`]) new MemoryStore({ name: n }).clear();
        return Promise.resolve();
      },
    });
  },
});
