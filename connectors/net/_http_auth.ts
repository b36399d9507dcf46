// Request authentication for the HTTP source: bearer tokens compared in constant time, and
// HMAC-SHA256 signatures of the raw body checked with WebCrypto (whose verify is constant-time).
// Secrets never appear in errors or logs.

const encoder = new TextEncoder();

/** Authentication of the HTTP source. */
export type HttpAuth =
  | { bearer: string }
  | { hmac: { secret: string; header?: string } };

async function sha256(bytes: Uint8Array<ArrayBuffer>): Promise<Uint8Array> {
  return new Uint8Array(await crypto.subtle.digest("SHA-256", bytes));
}

/** Equality of two strings in time independent of where they differ (digests compared). */
export async function constantTimeEqual(a: string, b: string): Promise<boolean> {
  const [x, y] = await Promise.all([sha256(encoder.encode(a)), sha256(encoder.encode(b))]);
  let diff = 0;
  for (let i = 0; i < x.length; i++) diff |= x[i]! ^ y[i]!;
  return diff === 0;
}

/** Whether the request carries the bearer token. */
export async function bearerOk(req: Request, token: string): Promise<boolean> {
  const header = req.headers.get("authorization") ?? "";
  const m = /^Bearer\s+(.+)$/i.exec(header);
  // Compare even without a header, so timing does not tell a missing token from a wrong one.
  return await constantTimeEqual(m?.[1]?.trim() ?? "", token) && m !== null;
}

function fromHex(hex: string): Uint8Array<ArrayBuffer> | undefined {
  if (!/^(?:[0-9a-f]{2})+$/i.test(hex)) return undefined;
  const out = new Uint8Array(hex.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(hex.slice(2 * i, 2 * i + 2), 16);
  return out;
}

/** Makes a checker of `sha256=<hex>` (or bare hex) HMAC-SHA256 signatures of the body. */
export async function hmacChecker(
  secret: string,
): Promise<(signature: string | null, body: Uint8Array<ArrayBuffer>) => Promise<boolean>> {
  const key = await crypto.subtle.importKey(
    "raw",
    encoder.encode(secret),
    { name: "HMAC", hash: "SHA-256" },
    false,
    ["verify"],
  );
  return async (signature, body) => {
    const sig = fromHex((signature ?? "").trim().replace(/^sha256=/i, ""));
    if (!sig) return false;
    return await crypto.subtle.verify("HMAC", key, sig, body);
  };
}

/** Hex HMAC-SHA256 of `body` (for clients and tests). */
export async function hmacHex(
  secret: string,
  body: Uint8Array<ArrayBuffer> | string,
): Promise<string> {
  const key = await crypto.subtle.importKey(
    "raw",
    encoder.encode(secret),
    { name: "HMAC", hash: "SHA-256" },
    false,
    ["sign"],
  );
  const bytes = typeof body === "string" ? encoder.encode(body) : body;
  const sig = new Uint8Array(await crypto.subtle.sign("HMAC", key, bytes));
  return [...sig].map((b) => b.toString(16).padStart(2, "0")).join("");
}
