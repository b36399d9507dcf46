// Pinned mongodb driver specifier: the only place Sluice names it.
export { MongoClient } from "npm:mongodb@6.22.0";
export type { Collection, Db, MongoClientOptions } from "npm:mongodb@6.22.0";
