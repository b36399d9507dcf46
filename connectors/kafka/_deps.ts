// Pinned kafkajs specifier: the only place Sluice names it.
export * as kafkajs from "npm:kafkajs@2.2.4";
