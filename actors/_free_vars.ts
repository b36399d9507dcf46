/**
 * Free-variable finder for the source text of one JavaScript function (internal).
 *
 * A small tokenizer plus a scope-light pass: every name bound anywhere in the source (parameters,
 * declarations, function and class names, catch parameters) counts as bound everywhere. That can
 * miss a free variable (a false negative) but never flags a name the function binds itself.
 *
 * @module
 */

/** One token of JavaScript source. */
export interface Token {
  /** `name`, `private` (`#x`), `num`, `str`, `tmpl` (template text), `re` or `punct`. */
  readonly t: "name" | "private" | "num" | "str" | "tmpl" | "re" | "punct";
  /** The token text (names with `\u` escapes decoded; `${` is reported as `(`, its `}` as `)`). */
  readonly v: string;
  /** Offset of the token in the source. */
  readonly at: number;
  /** Whether a line break precedes the token. */
  readonly nl: boolean;
  /** For `{`: whether it opens a block (statement context) rather than an expression. */
  readonly block?: boolean;
}

const PUNCT = [">>>=", "...", "===", "!==", "**=", "<<=", ">>=", ">>>", "&&=", "||=", "??="]
  .concat(["=>", "==", "!=", "<=", ">=", "&&", "||", "??", "?.", "++", "--", "+=", "-=", "*="])
  .concat(["/=", "%=", "&=", "|=", "^=", "**", "<<", ">>"]);
/** Names after which an expression (so a regex, or an object literal `{`) may start. */
const EXPR_KEYWORDS = new Set(
  ("return typeof instanceof in of new delete void throw case do else yield await extends " +
    "let const var").split(" "),
);
/** Names after which `{` opens a block. */
const BLOCK_KEYWORDS = new Set(["else", "do", "try", "finally", "static"]);
const ID_START = /[\p{ID_Start}$_\\]/u;
const ID_PART = /[\p{ID_Continue}$_\\\u200c\u200d]/u;

/**
 * Splits JavaScript source into tokens, skipping comments and whitespace.
 *
 * @param src The source text.
 * @returns The tokens; on malformed input (an unterminated string, say) it stops early.
 */
export function tokenize(src: string): Token[] {
  return scan(src).toks;
}

/** {@linkcode tokenize}, also telling whether it reached the end (false: malformed input). */
function scan(src: string): { toks: Token[]; complete: boolean } {
  const out: Token[] = [];
  // Open brackets: "(" (kw: after if/for/while/with), "{" (block or not), "${" (template), each
  // with its count of pending `?`; the first entry stands for the top level.
  const stack: { ch: string; kw?: boolean; block?: boolean; q: number }[] = [{ ch: "", q: 0 }];
  let lastCloser: { ch: string; kw?: boolean; block?: boolean } | undefined;
  let ternaryColon = false; // the last `:` closed a `? :`
  let i = 0;
  let nl = false;
  const push = (t: Token["t"], v: string, at: number, block?: boolean) => {
    out.push(block === undefined ? { t, v, at, nl } : { t, v, at, nl, block });
    nl = false;
  };
  const prev = () => out[out.length - 1];
  /** The previous token's text if it is a name that is not a property (`a.if`). */
  const word = (): string => {
    const p = out[out.length - 1];
    const q = out[out.length - 2];
    return p?.t === "name" && !(q?.t === "punct" && (q.v === "." || q.v === "?.")) ? p.v : "";
  };
  const regexAllowed = (): boolean => {
    const p = prev();
    if (!p) return true;
    if (p.t === "name") return EXPR_KEYWORDS.has(word());
    if (p.t !== "punct") return false;
    if (p.v === ")") return lastCloser?.ch === "(" && lastCloser.kw === true;
    if (p.v === "}") return lastCloser?.ch === "{" && lastCloser.block === true;
    return p.v !== "]" && p.v !== "++" && p.v !== "--";
  };
  const braceIsBlock = (): boolean => {
    const p = prev();
    if (!p) return true;
    if (p.t === "name") return !EXPR_KEYWORDS.has(word()) || BLOCK_KEYWORDS.has(word());
    if (p.t !== "punct") return false;
    if (p.v === ":") {
      const top = stack[stack.length - 1];
      return !ternaryColon && top?.ch === "{" && top.block === true;
    }
    return [")", "=>", ";", "{", "}"].includes(p.v);
  };
  /** Scans template text from `i` (just after "`" or a `${…}`'s "}"); returns false if unclosed. */
  const template = (): boolean => {
    const start = i;
    while (i < src.length) {
      const c = src[i];
      if (c === "\\") i += 2;
      else if (c === "`") {
        push("tmpl", src.slice(start, ++i), start);
        return true;
      } else if (c === "$" && src[i + 1] === "{") {
        push("tmpl", src.slice(start, i), start);
        push("punct", "(", i);
        stack.push({ ch: "${", q: 0 });
        i += 2;
        return true;
      } else i++;
    }
    return false;
  };
  while (i < src.length) {
    const c = src[i] as string;
    const at = i;
    if (c === "\n" || c === "\r" || c === "\u2028" || c === "\u2029") {
      nl = true;
      i++;
    } else if (/\s/.test(c)) i++;
    else if (c === "/" && src[i + 1] === "/") {
      while (i < src.length && !/[\n\r\u2028\u2029]/.test(src[i] as string)) i++;
    } else if (c === "/" && src[i + 1] === "*") {
      const end = src.indexOf("*/", i + 2);
      if (end < 0) return { toks: out, complete: false };
      if (/[\n\r\u2028\u2029]/.test(src.slice(i, end))) nl = true;
      i = end + 2;
    } else if (c === '"' || c === "'") {
      i++;
      while (i < src.length && src[i] !== c && src[i] !== "\n") i += src[i] === "\\" ? 2 : 1;
      if (src[i] !== c) return { toks: out, complete: false };
      push("str", src.slice(at, ++i), at);
    } else if (c === "`") {
      i++;
      if (!template()) return { toks: out, complete: false };
    } else if (/[0-9]/.test(c) || (c === "." && /[0-9]/.test(src[i + 1] ?? ""))) {
      while (i < src.length) {
        const d = src[i] as string;
        if (/[eE]/.test(d) && /[+-]/.test(src[i + 1] ?? "") && !/^0[xX]/.test(src.slice(at))) {
          i += 2;
        } else if (/[\w.]/.test(d)) i++;
        else break;
      }
      push("num", src.slice(at, i), at);
    } else if (ID_START.test(c) || c === "#") {
      i++;
      while (i < src.length && ID_PART.test(src[i] as string)) i += src[i] === "\\" ? 2 : 1;
      const raw = src.slice(at, i).replace(
        /\\u\{?([0-9a-fA-F]+)\}?/g,
        (_, hex: string) => String.fromCodePoint(parseInt(hex, 16)),
      );
      if (c === "#") push("private", raw, at);
      else push("name", raw, at);
    } else if (c === "/" && regexAllowed() && scanRegex()) {
      push("re", src.slice(at, i), at);
    } else if (c === "}" && stack[stack.length - 1]?.ch === "${") {
      stack.pop();
      push("punct", ")", at);
      i++;
      if (!template()) return { toks: out, complete: false };
    } else {
      const p = PUNCT.find((s) =>
        src.startsWith(s, i) && !(s === "?." && /\d/.test(src[i + 2] ?? ""))
      );
      const v = p ?? c;
      i += v.length;
      const top = stack[stack.length - 1];
      if (v === "(") {
        stack.push({ ch: "(", kw: /^(if|for|while|with)$/.test(word()), q: 0 });
      } else if (v === "[") stack.push({ ch: "[", q: 0 });
      else if (v === "{") {
        const block = braceIsBlock();
        push("punct", v, at, block);
        stack.push({ ch: "{", block, q: 0 });
        continue;
      } else if (v === ")" || v === "]" || v === "}") {
        if (stack.length > 1) lastCloser = stack.pop();
      } else if (v === "?" && top) top.q++;
      else if (v === ":") {
        ternaryColon = top !== undefined && top.q > 0;
        if (ternaryColon && top) top.q--;
      }
      push("punct", v, at);
    }
  }
  return { toks: out, complete: true };

  /** Scans a regex literal from `i` (at its "/"); false (and `i` unchanged) if it is not one. */
  function scanRegex(): boolean {
    let j = i + 1;
    let inClass = false;
    while (j < src.length) {
      const d = src[j];
      if (d === "\n" || d === "\r") return false;
      if (d === "\\") j++;
      else if (d === "[") inClass = true;
      else if (d === "]") inClass = false;
      else if (d === "/" && !inClass) break;
      j++;
    }
    if (j >= src.length || j === i + 1) return false;
    j++;
    while (j < src.length && /[a-z]/.test(src[j] as string)) j++;
    i = j;
    return true;
  }
}

/** Words never reported: reserved words, contextual keywords and implicit bindings. */
const KEYWORDS = new Set(
  ("break case catch class const continue debugger default delete do else enum export extends " +
    "false finally for function if import in instanceof new null return super switch this throw " +
    "true try typeof var void while with yield let static implements package protected interface " +
    "private public await async of get set accessor arguments undefined as from target meta using")
    .split(" "),
);
const MODIFIERS = new Set(["get", "set", "async", "static", "accessor"]);
const STATEMENT_WORDS = /^(if|for|while|switch|with)$/;

interface Frame {
  readonly kind: "root" | "paren" | "bracket" | "block" | "object" | "class";
  /** Names directly at this level are bindings (parameters, destructuring patterns). */
  readonly pattern: boolean;
  /** After `=` in a pattern: a default value, so an expression. */
  inDefault: boolean;
  /** Object literal or pattern: at a property key; class body: at a member's start. */
  keyPos: boolean;
  /** A `var`/`let`/`const` list is open at this level (a `,` starts another declarator). */
  decl: boolean;
}

/**
 * Lists the names a function's source uses but does not bind, in first-use order.
 *
 * Scope-light: a name bound anywhere in the source counts as bound everywhere. Globals are not
 * removed here (the caller filters them against `globalThis`).
 *
 * @param source The function's source text (as from `Function.prototype.toString`).
 * @returns The free names, deduplicated.
 */
export function freeVariables(source: string): string[] {
  const toks = tokenize(source);
  const match = new Map<number, number>();
  const open: number[] = [];
  toks.forEach((tok, k) => {
    if (tok.t !== "punct") return;
    if (tok.v === "(" || tok.v === "[" || tok.v === "{") open.push(k);
    else if (tok.v === ")" || tok.v === "]" || tok.v === "}") {
      const o = open.pop();
      if (o !== undefined) match.set(o, k);
    }
  });
  const frame = (kind: Frame["kind"], pattern = false, keyPos = false): Frame => ({
    kind,
    pattern,
    inDefault: false,
    keyPos,
    decl: false,
  });
  const stack: Frame[] = [frame("root")];
  const bound = new Set<string>();
  const used: string[] = [];
  let pendingDecl = false; // the next token is a declaration target
  let bindFn = false; // after `function`: the next name is the function's
  let classAt = -1; // stack depth whose next `{` is a class body
  let lastKey = -1; // index of the last token taken as a property key or member name

  for (let k = 0; k < toks.length; k++) {
    const tok = toks[k] as Token;
    const prev = toks[k - 1];
    const next = toks[k + 1];
    const top = stack[stack.length - 1] as Frame;
    const declTarget = pendingDecl;
    pendingDecl = false;
    const binding = declTarget || (top.pattern && !top.inDefault);
    if (top.kind === "class" && tok.nl && prev && endsExpression(prev)) top.keyPos = true;

    if (top.kind === "class" && top.keyPos && tok.t !== "punct") {
      // A class member's name or modifier: never a reference.
      if (!(tok.t === "name" && MODIFIERS.has(tok.v) && startsKey(next))) {
        top.keyPos = false;
        lastKey = k;
      }
      continue;
    }
    if (tok.t === "punct") {
      const v = tok.v;
      if (v === "(") {
        const after = toks[(match.get(k) ?? toks.length) + 1];
        const before = toks[k - 2]?.v;
        const word = prev?.t === "name" && before !== "." && before !== "?." && lastKey !== k - 1
          ? prev.v
          : "";
        const params = word === "catch" || after?.v === "=>" ||
          (after?.v === "{" && !STATEMENT_WORDS.test(word) &&
            !(word === "await" && before === "for"));
        stack.push(frame("paren", params));
      } else if (v === "[") {
        const computed = (top.kind === "object" || top.kind === "class") && top.keyPos;
        if (computed) top.keyPos = false;
        stack.push(frame("bracket", binding && !computed));
      } else if (v === "{") {
        const keyed = top.kind === "object" && top.keyPos;
        if (binding && !keyed) stack.push(frame("object", true, true));
        else if (classAt === stack.length) stack.push(frame("class", false, true));
        else stack.push(tok.block ? frame("block") : frame("object", false, true));
        if (classAt === stack.length - 1) classAt = -1;
      } else if (v === ")" || v === "]" || v === "}") {
        if (stack.length > 1) stack.pop();
        const outer = stack[stack.length - 1] as Frame;
        if (outer.kind === "class" && v === "}") outer.keyPos = true;
      } else if (v === ",") {
        top.inDefault = false;
        if (top.kind === "object") top.keyPos = true;
        if (top.decl) pendingDecl = true;
      } else if (v === "=" && top.pattern) top.inDefault = true;
      else if ((v === ":" || v === "...") && top.kind === "object") top.keyPos = false;
      else if (v === ";") {
        top.decl = false;
        if (top.kind === "class") top.keyPos = true;
      } else if (v === "*" && bindFn) continue;
      else if (top.kind === "class" && v !== "*") top.keyPos = false;
      bindFn = false;
      continue;
    }
    if (tok.t === "private") top.keyPos = false;
    if (tok.t !== "name") continue;
    const name = tok.v;
    const fnName = bindFn;
    bindFn = false;

    if (prev?.t === "punct" && (prev.v === "." || prev.v === "?.")) continue; // property
    if (top.kind === "object" && top.keyPos && !top.pattern) {
      if (MODIFIERS.has(name) && startsKey(next)) continue; // `get x() {}`, `async f() {}`
      top.keyPos = false;
      if (next?.v === ":" || next?.v === "(") lastKey = k; // key, method name
      else if (!KEYWORDS.has(name)) used.push(name); // shorthand `{ a }`
      continue;
    }
    if (KEYWORDS.has(name)) {
      const using = name === "using" && next?.t === "name" && !next.nl && !KEYWORDS.has(next.v);
      if (name === "var" || name === "let" || name === "const" || using) {
        pendingDecl = true;
        top.decl = true;
      } else if (name === "function") bindFn = true;
      else if (name === "class") {
        if (next?.t === "name" && next.v !== "extends") bound.add(next.v);
        classAt = stack.length;
      } else if ((name === "break" || name === "continue") && next?.t === "name" && !next.nl) k++;
      else if ((name === "in" || name === "of") && top.kind === "paren") top.decl = false;
      else if (name === "typeof" && next?.t === "name" && !KEYWORDS.has(next.v)) {
        // `typeof x` never throws, even for an undeclared x; `typeof x.y` does.
        const after = toks[k + 2];
        if (!(after?.t === "tmpl" || /^(\.|\?\.|\[|\()$/.test(after?.v ?? ""))) k++;
      }
      continue;
    }
    if (binding && top.kind === "object" && top.keyPos && next?.v === ":") lastKey = k;
    else if (fnName || binding || next?.v === "=>") bound.add(name);
    else if (
      next?.v === ":" && top.kind === "block" &&
      (prev === undefined || /^[;{}:)]$/.test(prev.v) || tok.nl)
    ) continue; // label
    else used.push(name);
  }
  return [...new Set(used)].filter((name) => !bound.has(name));
}

/** Whether a token ends an expression (so a line break after it may end a class field). */
function endsExpression(tok: Token): boolean {
  if (tok.t === "punct") return /^(\)|\]|\}|\+\+|--)$/.test(tok.v);
  return tok.t !== "name" || !KEYWORDS.has(tok.v) || /^(this|super|null|true|false)$/.test(tok.v);
}

/** Whether a token can start a property key (so a preceding `get`/`async`… is a modifier). */
function startsKey(tok: Token | undefined): boolean {
  if (!tok) return false;
  return tok.t === "punct" ? tok.v === "[" || tok.v === "*" : tok.t !== "tmpl" && tok.t !== "re";
}
