/**
 * Free-variable finder for the source text of one JavaScript function (internal).
 *
 * A small tokenizer plus a scope-aware pass: a name counts as bound only inside the scope that
 * binds it (parameters, declarations, function and class names, catch parameters). Where unsure it
 * errs towards "bound": it can miss a free variable (a false negative) but must never flag a name
 * the function binds itself, since that would reject a working function.
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

/**
 * Words never reported: reserved words, some contextual keywords and implicit bindings. Other
 * contextual keywords are names except where they act as keywords, handled apart: `of` in a `for`
 * head, `using` before a declared name, `get`/`set`/`accessor` before a member name, `target` and
 * `meta` after a `.`.
 */
const KEYWORDS = new Set(
  ("break case catch class const continue debugger default delete do else enum export extends " +
    "false finally for function if import in instanceof new null return super switch this throw " +
    "true try typeof var void while with yield let static implements package protected interface " +
    "private public await async arguments undefined")
    .split(" "),
);
const MODIFIERS = new Set(["get", "set", "async", "static", "accessor"]);
const STATEMENT_WORDS = /^(if|for|while|switch|with)$/;
/** Statements that may hold other statements (or cannot be a loop's body), so may not end at `;`. */
const COMPOUND = /^(if|for|while|do|with|switch|try|function|class|async|let|const|using)$/;
const CLOSERS: Record<string, string> = { "(": ")", "[": "]", "{": "}" };

interface Frame {
  readonly kind: "root" | "paren" | "bracket" | "block" | "object" | "class";
  /** Names directly at this level are bindings (parameters, destructuring patterns). */
  readonly pattern: boolean;
  /** How names in this pattern are bound: as parameters (`here`), or by a `let`… or a `var`. */
  readonly binds: Binding;
  /** After `=` in a pattern: a default value, so an expression. */
  inDefault: boolean;
  /** Object literal or pattern: at a property key; class body: at a member's start. */
  keyPos: boolean;
  /** A `var`/`let`/`const` list is open at this level (a `,` starts another declarator). */
  decl: boolean;
  /** That list is a `var` one. */
  declVar: boolean;
  /** A `for (…)` head (where `of` may be a keyword). */
  readonly forHead?: boolean;
}

/** How a name is bound: in the current scope, or as a `let` or `var` declaration. */
type Binding = "here" | "let" | "var";

/** A scope: the names bound in it are visible from where it opens to its last token. */
interface Scope {
  readonly parent: Scope | undefined;
  /** Index of its last token. */
  readonly end: number;
  /** A function with a block body (or the top level, or a class's `static {}`): takes `var`s. */
  readonly fn: boolean;
  /**
   * Index of the last token whose `let`/`const`/`class` declarations land here: a block's end,
   * a `for` head's `)`; -1 for parameter lists, catch clauses, class bodies and arrows' expression
   * bodies (any declaration inside those is in a nested block).
   */
  readonly lexical: number;
  readonly names: Set<string>;
}

/**
 * Lists the names a function's source uses but does not bind, in first-use order.
 *
 * Scope-aware: a name counts as bound only inside the scope that binds it (function, block,
 * `for` head, `catch` clause, class body), with `var` and function declarations hoisted to their
 * function and `let`/`const`/`class` bound in their whole block. Where a scope's end is unclear
 * it is taken to run on (a missed free name, never a wrongly flagged bound one); on input it
 * does not understand (unbalanced brackets, an unterminated string…) it falls back to counting a
 * name bound anywhere in the source as bound everywhere. Globals are not removed here (the
 * caller filters them against `globalThis`).
 *
 * @param source The function's source text (as from `Function.prototype.toString`).
 * @returns The free names, deduplicated.
 */
export function freeVariables(source: string): string[] {
  const { toks, complete } = scan(source);
  let sure = complete; // false: fall back to the scope-light answer
  const match = new Map<number, number>();
  const open: number[] = [];
  toks.forEach((tok, k) => {
    if (tok.t !== "punct") return;
    if (tok.v === "(" || tok.v === "[" || tok.v === "{") open.push(k);
    else if (tok.v === ")" || tok.v === "]" || tok.v === "}") {
      const o = open.pop();
      if (o === undefined || CLOSERS[toks[o]?.v ?? ""] !== tok.v) sure = false;
      if (o !== undefined) match.set(o, k);
    }
  });
  if (open.length > 0) sure = false;
  const frame = (
    kind: Frame["kind"],
    pattern = false,
    keyPos = false,
    binds: Binding = "here",
  ): Frame => ({
    kind,
    pattern,
    binds,
    inDefault: false,
    keyPos,
    decl: false,
    declVar: false,
  });
  const stack: Frame[] = [frame("root")];
  const bound = new Set<string>(); // every name bound anywhere (for the fallback)
  const refs: [string, Scope][] = []; // each use, with the scope it is in
  const all = toks.length;
  const root: Scope = { parent: undefined, end: all, fn: true, lexical: all, names: new Set() };
  let scope = root;
  /**
   * Opens a scope ending at token `last` (undefined: not understood), taking `var`s if `fn`, and
   * `let`s declared up to token `lexical`.
   */
  const enter = (last: number | undefined, fn: boolean, lexical = -1) => {
    // A scope must close inside its parent; otherwise the brackets were misread.
    if (last === undefined || last > scope.end) sure = false;
    const end = Math.min(last ?? scope.end, scope.end);
    scope = { parent: scope, end, fn, lexical: Math.min(lexical, end), names: new Set() };
  };
  /**
   * Binds a name at token `k`: `here` in the current scope (a parameter, a function expression's
   * or class's own name), a `let` in the innermost scope taking declarations there, a `var` (or
   * function declaration) in the innermost function. So a declaration past the real end of a
   * scope read on too far (an arrow's expression body, a `for` body) still lands in its block.
   */
  const bind = (name: string, how: Binding, k: number) => {
    bound.add(name);
    let s = scope;
    while (s.parent && (how === "let" ? k > s.lexical : how === "var" && !s.fn)) s = s.parent;
    s.names.add(name);
  };
  /** Whether the function whose parameters end at token `close` has a block body. */
  const blockBody = (close: number): boolean =>
    isPunct(toks[close + 1], "{") ||
    (isPunct(toks[close + 1], "=>") && isPunct(toks[close + 2], "{"));
  /** Last token of the body of a function whose parameters end at token `close`. */
  const bodyEnd = (close: number): number | undefined => {
    if (isPunct(toks[close + 1], "{")) return match.get(close + 1);
    if (!isPunct(toks[close + 1], "=>")) return undefined;
    if (isPunct(toks[close + 2], "{")) return match.get(close + 2);
    return expressionEnd(toks, match, close + 2);
  };
  /** Last token of the body of a `for` whose head ends at token `close`. */
  const forEnd = (close: number): number | undefined => {
    const body = toks[close + 1];
    if (isPunct(body, "{")) return match.get(close + 1);
    // A compound or labelled statement: where it ends is not worth working out, so run on.
    if (body?.t === "name" && (COMPOUND.test(body.v) || isPunct(toks[close + 2], ":"))) {
      return scope.end;
    }
    return expressionEnd(toks, match, close + 1, true);
  };
  let pendingDecl = false; // the next token is a declaration target
  let pendingKind: Binding = "let"; // a `let` (`const`, `using`) or a `var`
  let bindFn = false; // after `function`: the next name is the function's
  let fnDecl = false; // that function is a declaration (its name is bound outside it)
  let fnName: string | undefined; // a function expression's name, bound in its own scope
  let classAt = -1; // stack depth whose next `{` is a class body
  let className: string | undefined; // the name that class binds inside its body
  let lastKey = -1; // index of the last token taken as a property key or member name

  for (let k = 0; k < toks.length; k++) {
    while (k > scope.end && scope.parent) scope = scope.parent; // leave the scopes that ended
    const tok = toks[k] as Token;
    const prev = toks[k - 1];
    const next = toks[k + 1];
    const top = stack[stack.length - 1] as Frame;
    const declTarget = pendingDecl;
    pendingDecl = false;
    const binding = declTarget || (top.pattern && !top.inDefault);
    const binds = declTarget ? pendingKind : top.binds;
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
        const close = match.get(k);
        const after = toks[(close ?? toks.length) + 1];
        const before = toks[k - 2]?.v;
        const word = prev?.t === "name" && before !== "." && before !== "?." && lastKey !== k - 1
          ? prev.v
          : "";
        const params = word === "catch" || isPunct(after, "=>") ||
          (isPunct(after, "{") && !STATEMENT_WORDS.test(word) &&
            !(word === "await" && before === "for"));
        const forHead = !params && (word === "for" || (word === "await" && before === "for"));
        if (params && word === "catch") {
          // `catch (e) {…}`: `e` is bound in the catch block only.
          enter(
            close !== undefined && isPunct(after, "{") ? match.get(close + 1) : undefined,
            false,
          );
        } else if (params) {
          // A function's parameters and body share a scope, with its own name if an expression.
          enter(close === undefined ? undefined : bodyEnd(close), blockBody(close ?? all));
          if (fnName !== undefined) bind(fnName, "here", k);
        } else if (forHead) {
          // `for (let i …)`: bound in the head and the body.
          enter(close === undefined ? undefined : forEnd(close), false, close);
        }
        stack.push({ ...frame("paren", params), forHead });
      } else if (v === "[") {
        const computed = (top.kind === "object" || top.kind === "class") && top.keyPos;
        if (computed) top.keyPos = false;
        stack.push(frame("bracket", binding && !computed, false, binds));
      } else if (v === "{") {
        const keyed = top.kind === "object" && top.keyPos;
        if (binding && !keyed) stack.push(frame("object", true, true, binds));
        else if (classAt === stack.length) {
          // A class body: the class's name is bound inside it (even for a class expression).
          stack.push(frame("class", false, true));
          enter(match.get(k), false);
          if (className !== undefined) bind(className, "here", k);
          className = undefined;
        } else if (tok.block) {
          // A class's `static {}` is a function body of its own (for its `var`s).
          enter(match.get(k), top.kind === "class" && prev?.v === "static", all);
          stack.push(frame("block"));
        } else stack.push(frame("object", false, true));
        if (classAt === stack.length - 1) classAt = -1;
      } else if (v === ")" || v === "]" || v === "}") {
        if (stack.length > 1) stack.pop();
        const outer = stack[stack.length - 1] as Frame;
        if (outer.kind === "class" && v === "}") outer.keyPos = true;
      } else if (v === ",") {
        top.inDefault = false;
        if (top.kind === "object") top.keyPos = true;
        if (top.decl) {
          pendingDecl = true;
          pendingKind = top.declVar ? "var" : "let";
        }
      } else if (v === "=" && top.pattern) top.inDefault = true;
      else if ((v === ":" || v === "...") && top.kind === "object") top.keyPos = false;
      else if (v === ";") {
        top.decl = false;
        if (top.kind === "class") top.keyPos = true;
      } else if (v === "*" && bindFn) continue;
      else if (top.kind === "class" && v !== "*") top.keyPos = false;
      bindFn = false;
      fnName = undefined;
      continue;
    }
    if (tok.t === "private") top.keyPos = false;
    if (tok.t !== "name") continue;
    const name = tok.v;
    const isFnName = bindFn;
    bindFn = false;

    if (prev?.t === "punct" && (prev.v === "." || prev.v === "?.")) continue; // property
    if (top.kind === "object" && top.keyPos && !top.pattern) {
      if (MODIFIERS.has(name) && startsKey(next)) continue; // `get x() {}`, `async f() {}`
      top.keyPos = false;
      if (next?.v === ":" || next?.v === "(") lastKey = k; // key, method name
      else if (!KEYWORDS.has(name)) refs.push([name, scope]); // shorthand `{ a }`
      continue;
    }
    // `using r = …` declares; `for (x of …)`: `of` after the left-hand side. Else they are names.
    const using = name === "using" && !binding && next?.t === "name" && !next.nl &&
      !KEYWORDS.has(next.v) && !(top.forHead && next.v === "of");
    const of = name === "of" && top.forHead === true && prev !== undefined &&
      (prev.t === "name" ? !/^(var|let|const)$/.test(prev.v) : /^[\])}]$/.test(prev.v));
    if (KEYWORDS.has(name) || using || of) {
      if (name === "var" || name === "let" || name === "const" || using) {
        pendingDecl = true;
        pendingKind = name === "var" ? "var" : "let";
        top.decl = true;
        top.declVar = name === "var";
      } else if (name === "function") {
        bindFn = true;
        fnDecl = startsDeclaration(toks, prev?.v === "async" && !tok.nl ? k - 1 : k, top);
      } else if (name === "class") {
        if (next?.t === "name" && next.v !== "extends") {
          className = next.v;
          if (startsDeclaration(toks, k, top)) bind(next.v, "let", k);
          else bound.add(next.v);
          k++; // the class's own name is not a reference
        }
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
    else if (isFnName) {
      // A declaration's name is hoisted to the enclosing function; an expression's is its own.
      if (fnDecl) bind(name, "var", k);
      else {
        bound.add(name);
        fnName = name;
      }
    } else if (isPunct(next, "=>")) {
      // `x => …`: the parameter opens the arrow's scope.
      enter(bodyEnd(k), blockBody(k));
      bind(name, "here", k);
    } else if (binding) bind(name, binds, k);
    else if (
      next?.v === ":" && top.kind === "block" &&
      (prev === undefined || /^[;{}:)]$/.test(prev.v) || /^(else|do)$/.test(word(prev)) || tok.nl)
    ) continue; // label
    else refs.push([name, scope]);
  }
  /** Whether `name` is bound in scope `s` or one around it. */
  const visible = (name: string, s: Scope | undefined): boolean =>
    s !== undefined && (s.names.has(name) || visible(name, s.parent));
  const free = refs.filter(([name, s]) => sure ? !visible(name, s) : !bound.has(name));
  return [...new Set(free.map(([name]) => name))];
}

/** Whether a token is the punctuator `v`. */
function isPunct(tok: Token | undefined, v: string): boolean {
  return tok?.t === "punct" && tok.v === v;
}

/** A name token's text, or "" for any other token. */
function word(tok: Token | undefined): string {
  return tok?.t === "name" ? tok.v : "";
}

/**
 * Whether the `function` or `class` (or `async function`) starting at token `k` is a declaration
 * rather than an expression. In doubt, yes: a declaration's name is bound more widely.
 */
function startsDeclaration(toks: readonly Token[], k: number, top: Frame): boolean {
  const p = toks[k - 1];
  if (p === undefined || toks[k]?.nl) return true; // the start, or a new line (maybe by ASI)
  if (p.t === "name") return !EXPR_KEYWORDS.has(p.v) || p.v === "else" || p.v === "do";
  if (p.t !== "punct") return true; // after a literal: only by ASI
  if (p.v === ":") return top.kind === "block"; // a label or `case x:`, not a key or `? :`
  return p.v === ";" || p.v === "}" || p.v === ")" || (p.v === "{" && p.block === true);
}

/**
 * Index of the last token of the expression starting at token `from` (an arrow's body), or with
 * `statement` of the simple statement there (a `for` body). An expression ends before a `,`, a
 * `;`, a `:` outside its own `? :` or a closing bracket at its level, or at a line break between
 * a complete operand and a name (ASI). Reading on too far only widens a scope, so anything not
 * recognised reads on. Undefined if brackets do not match.
 */
function expressionEnd(
  toks: readonly Token[],
  match: ReadonlyMap<number, number>,
  from: number,
  statement = false,
): number | undefined {
  let pending = 0; // open `?`s of the expression's own ternaries
  for (let j = from; j < toks.length; j++) {
    const tok = toks[j] as Token;
    const p = toks[j - 1];
    // A name (or `#x`) on a new line after a complete operand cannot continue the expression.
    const starts = tok.t === "private" || (tok.t === "name" && !/^(in|instanceof)$/.test(tok.v));
    if (j > from && tok.nl && starts && p && endsExpression(p)) return j - 1;
    if (tok.t !== "punct") continue;
    const v = tok.v;
    if (v === "(" || v === "[" || v === "{") {
      const close = match.get(j);
      if (close === undefined) return undefined;
      j = close;
    } else if (v === ")" || v === "]" || v === "}") return j - 1;
    else if (v === ";") return statement ? j : j - 1;
    else if (statement) continue;
    else if (v === ",") return j - 1;
    else if (v === "?") pending++;
    else if (v === ":" && pending-- === 0) return j - 1;
  }
  return toks.length - 1;
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
