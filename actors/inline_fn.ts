/**
 * Small inline functions in stage configs: sent to workers as source text.
 *
 * A stage's inline function runs in another Web Worker, so it travels as its source text
 * (`Function.prototype.toString`, which in Deno is already JavaScript) and is rebuilt there with
 * `new Function`. A function that closes over an outer variable would fail in the worker with a
 * `ReferenceError`, so {@linkcode inlineFn} rejects it when the pipeline is built.
 *
 * @module
 */
import { freeVariables, type Token, tokenize } from "./_free_vars.ts";

/**
 * A function serialised by source, safe to send to a worker (it is plain, cloneable data).
 *
 * @example
 * ```ts
 * import { compileFn, type InlineFn } from "@sluice/sluice";
 * import assert from "node:assert/strict";
 *
 * const double: InlineFn = { fn: "(x) => x * 2" };
 * assert.equal(compileFn<(x: number) => number>(structuredClone(double))(4), 8);
 * ```
 */
export interface InlineFn {
  /** The function's source text (already JavaScript: Deno strips types). */
  readonly fn: string;
}

const NATIVE = /\{\s*\[native code\]\s*\}\s*$/;

/**
 * Serialises a function that closes over nothing, for use in a stage config.
 *
 * Accepts arrow functions, `function` expressions and declarations, async and generator
 * functions, and object or class methods (`{ f(x) { … } }.f`, rewritten to a `function`
 * expression). The function may use its parameters, names it declares itself, and globals
 * (`Math`, `JSON`, `structuredClone`, …); any other name is an outer variable and is rejected.
 *
 * @param fn A function that uses only its parameters and global names.
 * @param what What the function is for, for the error message (e.g. `"map"`).
 * @returns Its source, ready for {@linkcode compileFn} in a worker.
 * @throws {TypeError} When `fn` is not a function, is native or bound, is a class, does not
 * compile on its own (e.g. a method using `super`), or references outer variables.
 *
 * @example
 * ```ts
 * import { compileFn, inlineFn } from "@sluice/sluice";
 * import assert from "node:assert/strict";
 *
 * const f = compileFn<(x: number) => number>(inlineFn((x: number) => x * 2, "map"));
 * assert.equal(f(21), 42);
 * const outer = 3;
 * assert.throws(() => inlineFn((x: number) => x * outer, "map"), /outer variable outer/);
 * ```
 */
export function inlineFn(fn: unknown, what: string): InlineFn {
  const fail = (why: string) => new TypeError(`Cannot use ${what} function: ${why}`);
  if (typeof fn !== "function") {
    throw fail(`expected a function, got ${fn === null ? "null" : typeof fn}`);
  }
  const src = Function.prototype.toString.call(fn);
  if (NATIVE.test(src)) {
    const name = fn.name.replace(/^bound /, "");
    throw fail(
      `${name || "it"} is a native or bound function and has no source to send to a worker; ` +
        `write it inline instead (e.g. (x) => Math.abs(x))`,
    );
  }
  const text = asExpression(src, fail);
  const free = freeVariables(text).filter((name) => !(name in globalThis));
  if (free.length > 0) {
    throw fail(
      `it references outer variable${free.length > 1 ? "s" : ""} ${free.join(", ")}; ` +
        `inline functions run in another worker and may use only their parameters and ` +
        `globals (pass values through the stage config or use a stage module)`,
    );
  }
  const inline: InlineFn = { fn: text };
  let compiled: unknown;
  try {
    compiled = compileFn(inline);
  } catch (e) {
    const msg = (e instanceof Error ? e.message : String(e)).replace(/\s+/g, " ");
    throw fail(`its source does not compile on its own (${msg}); use a stage module instead`);
  }
  if (typeof compiled !== "function") throw fail("its source does not evaluate to a function");
  return inline;
}

/**
 * Rebuilds a function serialised by {@linkcode inlineFn} (in a worker or anywhere else).
 *
 * @param inline The serialised function.
 * @returns The function.
 * @throws {SyntaxError} When the source does not parse.
 * @throws {TypeError} When `inline.fn` is not a string.
 *
 * @example
 * ```ts
 * import { compileFn } from "@sluice/sluice";
 * import assert from "node:assert/strict";
 *
 * assert.equal(compileFn<() => number>({ fn: "() => 7" })(), 7);
 * ```
 */
export function compileFn<F>(inline: InlineFn): F {
  if (typeof inline?.fn !== "string") {
    throw new TypeError(`Cannot compile inline function: expected { fn: string }`);
  }
  // Line breaks keep a trailing line comment in the source from swallowing the `)`.
  return new Function(`"use strict";\nreturn (\n${inline.fn}\n);`)() as F;
}

/**
 * Turns function source into an expression: arrows and `function`s stay as they are; a method
 * (`f(x) {…}`, `async *[k](x) {…}`, `get x() {…}`) becomes a `function` expression without its
 * name (a method's name is not in scope in its own body). Classes are rejected.
 */
function asExpression(src: string, fail: (why: string) => TypeError): string {
  const toks = tokenize(src);
  const first = toks[0];
  if (first?.t === "name" && first.v === "class") {
    throw fail("it is a class; pass a function (e.g. (x) => new MyClass(x) inside a stage module)");
  }
  const head: Token[] = [];
  let depth = 0;
  let k = 0;
  for (; k < toks.length; k++) {
    const tok = toks[k] as Token;
    if (tok.t === "punct" && depth === 0 && (tok.v === "(" || tok.v === "=>")) break;
    if (tok.t === "punct" && (tok.v === "[" || tok.v === "(")) depth++;
    if (tok.t === "punct" && (tok.v === "]" || tok.v === ")")) depth--;
    head.push(tok);
  }
  const paren = toks[k];
  if (paren === undefined || paren.v === "=>") return src; // `x => …`, `async x => …`
  if (head.some((tok) => tok.t === "name" && tok.v === "function")) return src;
  if (toks[closing(toks, k) + 1]?.v === "=>") return src; // `(x) => …`, `async (x) => …`
  const isAsync = head.length > 1 && head[0]?.t === "name" && head[0].v === "async";
  const star = head.some((tok) => tok.t === "punct" && tok.v === "*");
  return `${isAsync ? "async " : ""}function${star ? "*" : ""} ${src.slice(paren.at)}`;
}

/** Index of the `)` matching the `(` at `open`. */
function closing(toks: readonly Token[], open: number): number {
  let depth = 0;
  for (let k = open; k < toks.length; k++) {
    const { t, v } = toks[k] as Token;
    if (t !== "punct") continue;
    if (v === "(" || v === "[" || v === "{") depth++;
    else if ((v === ")" || v === "]" || v === "}") && --depth === 0) return k;
  }
  return toks.length;
}
