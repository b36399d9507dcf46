// Glob expansion without jsr std: a small glob → RegExp translation walked over Deno.readDir.
// Supports `*` and `?` (within one path segment), `**` (any number of segments), `[abc]` classes
// and `{a,b}` alternatives.

/** Whether `s` contains glob syntax. */
export function isGlob(s: string): boolean {
  return /[*?[{]/.test(s);
}

/** Translates a glob pattern (with `/` separators) into an anchored RegExp. */
export function globToRegExp(glob: string): RegExp {
  let re = "";
  let inGroup = 0;
  for (let i = 0; i < glob.length; i++) {
    const c = glob[i]!;
    if (c === "*") {
      if (glob[i + 1] === "*") {
        const slash = glob[i + 2] === "/";
        re += slash ? "(?:[^/]*/)*" : ".*";
        i += slash ? 2 : 1;
      } else re += "[^/]*";
    } else if (c === "?") re += "[^/]";
    else if (c === "[") {
      const end = glob.indexOf("]", i + 1);
      if (end < 0) re += "\\[";
      else {
        const body = glob.slice(i + 1, end).replace(/^!/, "^").replace(/\\/g, "\\\\");
        re += `[${body}]`;
        i = end;
      }
    } else if (c === "{") {
      inGroup++;
      re += "(?:";
    } else if (c === "}" && inGroup > 0) {
      inGroup--;
      re += ")";
    } else if (c === "," && inGroup > 0) re += "|";
    else re += c.replace(/[.+^$()|\\\]{}]/g, "\\$&");
  }
  return new RegExp(`^${re}$`);
}

/** The directory part of `glob` before its first segment with glob syntax (`"."` when none). */
export function globBase(glob: string): string {
  const parts = glob.split("/");
  const first = parts.findIndex(isGlob);
  const base = parts.slice(0, first < 0 ? parts.length - 1 : first).join("/");
  return base === "" ? (glob.startsWith("/") ? "/" : ".") : base;
}

/** Files matching `glob`, sorted by path; a missing base directory matches nothing. */
export async function expandGlob(pattern: string): Promise<string[]> {
  const glob = pattern.replace(/^(\.\/)+/, "");
  const base = globBase(glob);
  const re = globToRegExp(glob);
  const deep = glob.includes("**");
  const depth = glob.split("/").length - base.split("/").length;
  const found: string[] = [];
  const walk = async (dir: string, level: number): Promise<void> => {
    let entries: Deno.DirEntry[];
    try {
      entries = await Array.fromAsync(Deno.readDir(dir));
    } catch (e) {
      if (e instanceof Deno.errors.NotFound) return;
      throw e;
    }
    for (const entry of entries) {
      const path = dir === "." ? entry.name : `${dir === "/" ? "" : dir}/${entry.name}`;
      if (entry.isFile && re.test(path)) found.push(path);
      else if (entry.isDirectory && (deep || level + 1 < depth)) await walk(path, level + 1);
    }
  };
  await walk(base, 0);
  return found.sort();
}

/** The path a file stage needs access to: the file, or the glob's base directory. */
export function readRoot(options: { path?: string; glob?: string }): string {
  if (options.path !== undefined) return options.path;
  const glob = options.glob!;
  return isGlob(glob) ? globBase(glob.replace(/^(\.\/)+/, "")) : glob;
}
