// A stage reference builder for a fixture module of test stages.
import { stage } from "../../mod.ts";

/**
 * Builds references to the stages a fixture module exports. Fixture stages pass records through
 * untyped: their output fits whatever the test collects.
 */
export function fixtureRef(module: URL) {
  // deno-lint-ignore no-explicit-any
  return <I = unknown, O = any>(
    name: string,
    config: unknown,
    kind: "source" | "processor" | "sink" = "processor",
  ) => stage<I, O>(module, config, { kind, export: name });
}
