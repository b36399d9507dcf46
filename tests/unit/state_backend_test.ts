// The state backend suite on the embedded default, Deno KV: a KV file in a temp directory outside
// the repository, removed after each test.
import { stateBackendSuite } from "../integration/_state_backend_suite.ts";

stateBackendSuite("KvStore", async () => {
  const dir = await Deno.makeTempDir({ prefix: "sluice-kv-state-" });
  const path = `${dir}/state.kv`;
  return {
    descriptor: { backend: "kv", path },
    async rawKeys() {
      if (!(await Deno.stat(path).then(() => true, () => false))) return [];
      const kv = await Deno.openKv(path);
      try {
        const keys: string[] = [];
        for await (const entry of kv.list({ prefix: ["sluice"] })) {
          keys.push(String(entry.key[entry.key.length - 1]));
        }
        return keys;
      } finally {
        kv.close();
      }
    },
    cleanup: () => Deno.remove(dir, { recursive: true }).catch(() => {}),
  };
});
