// Reading a request body with a size limit: counted while streaming, never buffered past it.

/** The body, or `"too large"` once more than `max` bytes arrived (the rest is not read). */
export async function readBody(
  req: Request,
  max: number,
): Promise<Uint8Array<ArrayBuffer> | "too large"> {
  const declared = Number(req.headers.get("content-length") ?? NaN);
  if (Number.isFinite(declared) && declared > max) {
    await req.body?.cancel().catch(() => {});
    return "too large";
  }
  if (!req.body) return new Uint8Array(0);
  const parts: Uint8Array[] = [];
  let size = 0;
  const reader = req.body.getReader();
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    size += value.length;
    if (size > max) {
      await reader.cancel().catch(() => {});
      return "too large";
    }
    parts.push(value);
  }
  const body = new Uint8Array(size);
  let at = 0;
  for (const p of parts) {
    body.set(p, at);
    at += p.length;
  }
  return body;
}
