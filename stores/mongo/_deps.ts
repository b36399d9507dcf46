// Pinned mongodb driver specifier: the only place Sluice names it. The driver is loaded on first
// use (`loadMongodb()`, in the worker or thread that opens a client), so that importing Sluice does
// not load it in every worker. Types are exported as types only; code that runs after a client
// was created may use `mongodbLoaded()` synchronously.
export type {
  AnyBulkWriteOperation,
  BSON,
  ChangeStream,
  ChangeStreamDocument,
  Collection,
  Db,
  Document,
  MongoClient,
  MongoClientOptions,
  WriteConcernSettings,
} from "npm:mongodb@6.22.0";

type Driver = typeof import("npm:mongodb@6.22.0");

/** The parts of the mongodb driver Sluice uses. */
export interface Mongodb {
  /** The client class. */
  MongoClient: Driver["MongoClient"];
  /** The BSON library (EJSON, Binary, calculateObjectSize, …). */
  BSON: Driver["BSON"];
  /** Error classes, for `instanceof`. */
  MongoError: Driver["MongoError"];
  MongoBulkWriteError: Driver["MongoBulkWriteError"];
  MongoNetworkError: Driver["MongoNetworkError"];
  MongoServerSelectionError: Driver["MongoServerSelectionError"];
  MongoInvalidArgumentError: Driver["MongoInvalidArgumentError"];
  /** The ObjectId class. */
  ObjectId: Driver["ObjectId"];
}

let loading: Promise<Mongodb> | undefined;
let loaded: Mongodb | undefined;

/** The mongodb driver, loaded once on first use. */
export function loadMongodb(): Promise<Mongodb> {
  loading ??= (async () => {
    // Inline on purpose: Sluice is imported by URL, where no import map applies.
    // deno-lint-ignore no-import-prefix
    const m = await import("npm:mongodb@6.22.0");
    loaded = {
      MongoClient: m.MongoClient,
      BSON: m.BSON,
      MongoError: m.MongoError,
      MongoBulkWriteError: m.MongoBulkWriteError,
      MongoNetworkError: m.MongoNetworkError,
      MongoServerSelectionError: m.MongoServerSelectionError,
      MongoInvalidArgumentError: m.MongoInvalidArgumentError,
      ObjectId: m.ObjectId,
    };
    return loaded;
  })();
  return loading;
}

/**
 * The driver once {@linkcode loadMongodb} has resolved (as it has wherever a client exists).
 *
 * @throws {Error} When it has not been loaded yet.
 */
export function mongodbLoaded(): Mongodb {
  if (loaded === undefined) {
    throw new Error("Cannot use the mongodb driver: it is not loaded yet (await loadMongodb())");
  }
  return loaded;
}
