// Names of a file sink's output: the `path` pattern with `{n}` (part number, 6 digits), `{ts}`
// (ms when the part was opened) and `{i}` (instance) placeholders, the in-progress temp name of a
// part (`.<final name>.inprogress` in the same directory, so the final rename is atomic) and the
// directory scan that continues numbering after a restart.

const INPROGRESS = ".inprogress";

/** Splits a path into directory and base name. */
export function splitPath(path: string): { dir: string; base: string } {
  const at = path.lastIndexOf("/");
  return at < 0
    ? { dir: ".", base: path }
    : { dir: at === 0 ? "/" : path.slice(0, at), base: path.slice(at + 1) };
}

function join(dir: string, base: string): string {
  return dir === "/" ? `/${base}` : `${dir}/${base}`;
}

/** The pattern parts are named by: `-{n}` is inserted before the extension when the path has no `{n}`/`{ts}`. */
export function partPattern(path: string): string {
  if (path.includes("{n}") || path.includes("{ts}")) return path;
  const { dir, base } = splitPath(path);
  const dot = base.indexOf(".", 1);
  const named = dot < 0 ? `${base}-{n}` : `${base.slice(0, dot)}-{n}${base.slice(dot)}`;
  return join(dir, named);
}

/** Fills the placeholders. */
export function fillPattern(pattern: string, fill: { n?: number; ts?: number; i: number }): string {
  return pattern
    .replaceAll("{n}", String(fill.n ?? 0).padStart(6, "0"))
    .replaceAll("{ts}", String(fill.ts ?? 0))
    .replaceAll("{i}", String(fill.i));
}

/** The temp name a part is written under until it is complete. */
export function inProgressName(finalPath: string): string {
  const { dir, base } = splitPath(finalPath);
  return join(dir, `.${base}${INPROGRESS}`);
}

function patternRegExp(base: string, instance: number): RegExp {
  const esc = (s: string) => s.replace(/[.*+?^$()|[\]\\]/g, "\\$&");
  const re = base.split(/(\{n\}|\{ts\}|\{i\})/).map((part) =>
    part === "{n}"
      ? "(\\d+)"
      : part === "{ts}"
      ? "\\d+"
      : part === "{i}"
      ? String(instance)
      : esc(part)
  ).join("");
  return new RegExp(`^${re}$`);
}

/**
 * Scans the directory of `pattern`: the next free part number, and the in-progress files a
 * crashed run left behind (their data was acknowledged, so they are completed, not dropped).
 */
export async function scanParts(
  pattern: string,
  instance: number,
): Promise<{ next: number; leftovers: { temp: string; final: string }[] }> {
  const { dir, base } = splitPath(pattern);
  const re = patternRegExp(base, instance);
  let next = 0;
  const leftovers: { temp: string; final: string }[] = [];
  try {
    for await (const entry of Deno.readDir(dir)) {
      if (!entry.isFile) continue;
      const name = entry.name;
      const finalName = name.startsWith(".") && name.endsWith(INPROGRESS)
        ? name.slice(1, -INPROGRESS.length)
        : undefined;
      const m = re.exec(finalName ?? name);
      if (!m) continue;
      if (m[1] !== undefined) next = Math.max(next, Number(m[1]) + 1);
      if (finalName) leftovers.push({ temp: join(dir, name), final: join(dir, finalName) });
    }
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) throw e;
  }
  return { next, leftovers };
}
