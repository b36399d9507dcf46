// Which MongoDB driver errors are about the connection or the server's state, not the data: the
// one classification the MongoDB store and the MongoDB connectors retry by. By name and fields,
// so that it needs no loaded driver.

/** Driver errors of an unreachable or lost server (and their subclasses the driver throws). */
const TRANSIENT_NAMES = new Set([
  "MongoNetworkError",
  "MongoNetworkTimeoutError",
  "MongoPoolClearedError",
  "MongoServerSelectionError",
  "MongoServerClosedError",
  "MongoTopologyClosedError",
]);

/** Server error codes that mean "try again later", not "this write is wrong". */
const TRANSIENT_CODES = new Set([
  6, // HostUnreachable
  7, // HostNotFound
  50, // MaxTimeMSExpired
  64, // WriteConcernFailed
  89, // NetworkTimeout
  91, // ShutdownInProgress
  189, // PrimarySteppedDown
  262, // ExceededTimeLimit
  9001, // SocketException
  10107, // NotWritablePrimary
  11600, // InterruptedAtShutdown
  11602, // InterruptedDueToReplStateChange
  13435, // NotPrimaryNoSecondaryOk
  13436, // NotPrimaryOrSecondary
]);

/** Whether a driver error is about the connection or the server's state, not the data. */
export function isTransient(error: unknown): boolean {
  const e = error as {
    name?: unknown;
    code?: unknown;
    message?: unknown;
    writeErrors?: unknown;
    hasErrorLabel?: (label: string) => boolean;
  } | null;
  if (typeof e?.name === "string" && TRANSIENT_NAMES.has(e.name)) return true;
  if (typeof e?.hasErrorLabel === "function") {
    if (e.hasErrorLabel("RetryableWriteError") || e.hasErrorLabel("ResetPool")) return true;
  }
  // A bulk write that failed for some documents: their data is wrong, whatever the message says.
  if (
    e?.name === "MongoBulkWriteError" && Array.isArray(e.writeErrors) && e.writeErrors.length > 0
  ) {
    return false;
  }
  if (TRANSIENT_CODES.has(Number(e?.code))) return true;
  return /ECONNREFUSED|ECONNRESET|connection .*closed|topology (is )?(was )?(closed|destroyed)/i
    .test(String(e?.message ?? ""));
}
