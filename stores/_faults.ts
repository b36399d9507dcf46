// Error plumbing shared by the Redis and MongoDB clients (stores and connectors alike): a one-line
// message of a driver error, and turning a connection fault into a RetriableError.
import { RetriableError } from "../actors/errors.ts";

/** A driver error's message on one line. */
export function oneLine(error: unknown): string {
  return String((error as { message?: unknown } | null)?.message ?? error).replace(/\s+/g, " ")
    .trim();
}

/**
 * Runs a driver call; an error `isTransient` calls a connection fault becomes a
 * {@linkcode RetriableError} (the runtime retries with backoff), anything else is rethrown as it is.
 *
 * @param server What the message calls the server, e.g. `"Redis"`.
 * @param isTransient The driver's classification of its errors.
 * @param what What was being done ("write to RedisStore").
 * @param where The server's address, without credentials.
 * @param call The call.
 */
export async function attemptOn<T>(
  server: string,
  isTransient: (error: unknown) => boolean,
  what: string,
  where: string,
  call: () => Promise<T>,
): Promise<T> {
  try {
    return await call();
  } catch (cause) {
    if (!isTransient(cause)) throw cause;
    throw new RetriableError(
      `Cannot ${what}: ${server} at ${where} is unavailable (${oneLine(cause)})`,
      { cause },
    );
  }
}
