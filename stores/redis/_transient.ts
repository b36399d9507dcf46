// Which ioredis errors are about the connection or the server's state, not the command: the one
// classification the Redis store and the Redis Streams connectors retry by.

/** Reply errors that mean "try again later": the server is loading, busy or failing over. */
const TRANSIENT_REPLY = /^(LOADING|BUSY|TRYAGAIN|CLUSTERDOWN|MASTERDOWN|READONLY|NOREPLICAS)\b/;

/** Socket error codes of an unreachable or lost server. */
const TRANSIENT_CODES = new Set([
  "ECONNREFUSED",
  "ECONNRESET",
  "ETIMEDOUT",
  "EPIPE",
  "ENOTFOUND",
  "EHOSTUNREACH",
  "ENETUNREACH",
  "EAI_AGAIN",
]);

/** What ioredis says when the connection is gone or a command ran out of reconnection attempts. */
const TRANSIENT_TEXT =
  /Connection is closed|Stream isn't writeable|ECONNREFUSED|ECONNRESET|ETIMEDOUT|EPIPE|max retries/i;

/** Whether an ioredis error is about the connection or the server's state, not the command. */
export function isTransient(error: unknown): boolean {
  const e = error as { name?: unknown; message?: unknown; code?: unknown } | null;
  const message = String(e?.message ?? "");
  if (e?.name === "ReplyError") return TRANSIENT_REPLY.test(message);
  if (e?.name === "MaxRetriesPerRequestError") return true;
  if (typeof e?.code === "string" && TRANSIENT_CODES.has(e.code)) return true;
  return TRANSIENT_TEXT.test(message);
}
