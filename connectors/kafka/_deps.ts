// Pinned kafkajs specifier: the only place Sluice names it. The module is loaded on first use
// (in the stage's worker), so importing Sluice does not load kafkajs, which reads environment
// variables when it loads.
export type * as kafkajs from "npm:kafkajs@2.2.4";

/** The kafkajs module, loaded once on first use. */
export function loadKafkajs(): Promise<typeof import("npm:kafkajs@2.2.4")> {
  // Inline on purpose: Sluice is imported by URL, where no import map applies.
  // deno-lint-ignore no-import-prefix
  return import("npm:kafkajs@2.2.4");
}
