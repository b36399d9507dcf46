// Pinned ioredis specifier: the only place Sluice names it.
export { Redis } from "npm:ioredis@5.11.1";
export type { RedisOptions } from "npm:ioredis@5.11.1";
