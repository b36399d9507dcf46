/**
 * Connectors: sources and sinks for external systems, each in its own folder.
 *
 * @module
 */
export * from "./generator/mod.ts";
