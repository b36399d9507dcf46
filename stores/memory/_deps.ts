// Pinned lru-cache specifier: the only place Sluice names it. It reads no environment and needs
// no permission when it loads, so it is imported eagerly.
export { LRUCache } from "npm:lru-cache@11.5.3";
