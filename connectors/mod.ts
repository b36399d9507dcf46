/**
 * Connectors: sources and sinks for external systems, each in its own folder.
 *
 * @module
 */
export * from "./generator/mod.ts";
export * from "./file/mod.ts";
export * from "./stdio/mod.ts";
export * from "./net/mod.ts";
export * from "./kafka/mod.ts";
export * from "./redis/mod.ts";
export * from "./mongo/mod.ts";
