// Scope rules of freeVariables(): a name counts as bound only inside the scope that binds it.
// Sources are plain JavaScript strings (what inlineFn() hands it after Deno strips the types).
import assert from "node:assert/strict";
import { freeVariables } from "../../actors/_free_vars.ts";
import { inlineFn } from "../../actors/inline_fn.ts";

/** Checks the free names of each source (in first-use order). */
function expectFree(cases: [source: string, free: string[]][]): void {
  for (const [source, free] of cases) {
    assert.deepEqual(freeVariables(source), free, `freeVariables(${JSON.stringify(source)})`);
  }
}

Deno.test("freeVariables() flags a captured name the function also binds in an inner scope", () => {
  expectFree([
    ["(v) => { { const factor = 1; void factor; } return v * factor; }", ["factor"]],
    ["(v) => [1].map((factor) => factor) && v * factor", ["factor"]],
    ["(v) => { try { return v * factor; } catch (factor) { return factor; } }", ["factor"]],
  ]);
});

Deno.test("inlineFn() rejects real functions capturing a name bound in an inner scope", () => {
  const factor = 3;
  const fns: ((v: number) => unknown)[] = [
    (v) => {
      {
        const factor = 1;
        void factor;
      }
      return v * factor;
    },
    (v) => [1].map((factor) => factor) && v * factor,
    (v) => {
      try {
        return v * factor;
      } catch (factor) {
        return factor;
      }
    },
  ];
  for (const fn of fns) {
    assert.throws(() => inlineFn(fn, "map"), /references outer variable factor;/, String(fn));
  }
});

Deno.test("freeVariables() binds parameters in their own function only", () => {
  expectFree([
    // Arrows, with and without parentheses, async or not.
    ["(a) => [(b) => a + b, b]", ["b"]],
    ["(a) => [b => a + b, b]", ["b"]],
    ["(a) => [async b => a + b, async (c) => c, b, c]", ["b", "c"]],
    // Function declarations and expressions, async and generators.
    ["(a) => { function f(b) { return b } return f(a) + b }", ["b"]],
    ["(a) => [function (b) { return b }, async function* (c) { yield c }, b, c]", ["b", "c"]],
    // Methods, getters, setters and class constructors.
    ["(a) => [{ m(b) { return b } }, b]", ["b"]],
    ["(a) => [{ get g() { return a }, set s(b) { this.x = b } }, b]", ["b"]],
    ["(a) => [class { constructor(b) { this.b = b } m(c) { return c } }, b, c]", ["b", "c"]],
    ["(a) => [{ async *gen(b) { yield b } }, b]", ["b"]],
  ]);
});

Deno.test("freeVariables() binds destructuring parameters with defaults and rest", () => {
  expectFree([
    ["({ a, b: { c }, ...rest }, [d, , e = c], ...more) => a + c + d + e + rest + more", []],
    // Defaults may use earlier parameters; outer names in defaults are free.
    ["(a, b = a, { c = b } = {}, [d = c] = []) => a + b + c + d", []],
    ["(a, b = outer) => a + b", ["outer"]],
    // A pattern's keys are not bindings, its targets are.
    ["({ b: c }) => c + b", ["b"]],
    ["([{ k: [v] }]) => v + k", ["k"]],
    // Parameters of an inner function are not bindings of the outer one.
    ["(a) => [({ b }) => b, ([c]) => c, (...d) => d, b, c, d]", ["b", "c", "d"]],
  ]);
});

Deno.test("freeVariables() binds a function expression's name inside it only", () => {
  expectFree([
    ["function fact(n) { return n <= 1 ? 1 : n * fact(n - 1) }", []],
    ["(x) => { const f = function g(n) { return n && g(n - 1) }; return f(x) }", []],
    ["(x) => [function g() { return g }, g]", ["g"]],
    ["(x) => ({ a: function named() { return named } }).a() + named", ["named"]],
  ]);
});

Deno.test("freeVariables() never reports arguments, this or new.target", () => {
  expectFree([
    ["function () { return [arguments.length, this, new.target] }", []],
    ["function (a) { return () => arguments[0] + a }", []],
  ]);
});

Deno.test("freeVariables() hoists var and function declarations to their function", () => {
  expectFree([
    // Used before declared, and declared in a nested block.
    ["(x) => { return twice(x); function twice(y) { return y * 2 } }", []],
    ["(x) => { if (x) { var y = 1 } return y }", []],
    ["(x) => { for (var i = 0; i < x; i++) {} return i }", []],
    ["(x) => { y = x; { { var y } } return y }", []],
    ["(x) => { if (x) { function inner() { return 1 } } return inner() }", []],
    ["(x) => { try { var { a, b: [c] } = x } catch { } return a + c }", []],
    // But not out of the function they are in.
    ["(x) => { (() => { var y = x })(); return y }", ["y"]],
    ["(x) => { function f() { var y; function g() {} } return [y, g] }", ["y", "g"]],
    ["(x) => [function () { var y = 1 }, y]", ["y"]],
    // A class's static block is a function body of its own.
    ["(x) => { class A { static { var y = 1 } } return y }", ["y"]],
  ]);
});

Deno.test("freeVariables() binds let, const and class in their block", () => {
  expectFree([
    ["(x) => { { let y = 1; const z = 2; class C {} } return [y, z, C] }", ["y", "z", "C"]],
    // Usable in the whole block, before the declaration too (TDZ is not our concern).
    ["(x) => { const f = () => y; let y = x; return f() }", []],
    ["(x) => { return y; { let y } }", ["y"]],
    // `for (let …)` heads: the head and the body only.
    ["(xs) => { for (let i = 0; i < 3; i++) { f(i) } return i }", ["f", "i"]],
    ["(xs) => { for (const x of xs) { x } return x }", ["x"]],
    ["(xs) => { for (const k in xs) s(k); return k }", ["s", "k"]],
    ["(xs) => { for (const x of xs) for (const y of x) g(x, y); return [x, y] }", ["g", "y"]],
    // `switch` bodies.
    ["(x) => { switch (x) { case 1: let y = 2; return y } return y }", ["y"]],
    ["(x) => { switch (x) { case 1: return y; default: const y = 3 } }", []],
    // `using` declarations.
    ["async (x) => { { await using r = x; using s = r } return [r, s] }", ["r", "s"]],
  ]);
});

Deno.test("freeVariables() binds a catch parameter in its catch block only", () => {
  expectFree([
    ["(s) => { try { s.parse() } catch (err) { return err } }", []],
    ["(s) => { try { s.parse() } catch (err) { } return err }", ["err"]],
    ["(s) => { try { return err } catch (err) { } }", ["err"]],
    ["(s) => { try { } catch ({ name, message: m }) { return name + m } return [name, m] }", [
      "name",
      "m",
    ]],
    ["(s) => { try { } catch ({ a = fallback }) { return a } }", ["fallback"]],
    ["(s) => { try { } catch { return s } finally { e } }", ["e"]],
  ]);
});

Deno.test("freeVariables() binds class names in the class body, and declarations in the block", () => {
  expectFree([
    ["(x) => { class D { m() { return D } } return new D() }", []],
    ["(x) => { { class D {} } return D }", ["D"]],
    ["(x) => { const C = class D { m() { return D } }; return [C, D] }", ["D"]],
    ["(x) => new (class D { static make() { return new D() } })()", []],
    // Member names are not references; initializers and `extends` are.
    ["(x) => class { a = 1; b() {} static c = 2; get d() { return 1 } #e = 3; f }", []],
    ["(x) => class extends Base { v = factor; [key] = 1 }", ["Base", "factor", "key"]],
    ["(x) => class A { static { A.n = 1 } }", []],
  ]);
});

Deno.test("freeVariables() does not take labels for variables", () => {
  expectFree([
    [
      "(rows) => { outer: for (const r of rows) { for (const v of r) { if (v) continue outer; break outer } } }",
      [],
    ],
    ["(x) => { factor: { if (x) break factor } return x }", []],
    ["(x) => { done: if (x) break done; return factor }", ["factor"]],
    ["(x) => { if (x) { } else loop: for (;;) break loop }", []],
  ]);
});

Deno.test("freeVariables() tells property names from references", () => {
  expectFree([
    ["(a) => a.b + a?.c + a.d.e", []],
    ["(a) => ({ b: 1, c() { return 2 }, 'd': 3, [a]: 4, get e() { return 5 } })", []],
    ["(a) => class { #p = 1; m() { return this.#p + a.#p } }", []],
    // A shorthand property is a reference; a computed key too.
    ["(a) => ({ b })", ["b"]],
    ["(a) => ({ a, b, ...c, [d]: 1 })", ["b", "c", "d"]],
    // Destructuring assignment (not a declaration) assigns to what the names refer to.
    ["(a) => { ({ b } = a); [c] = a }", ["b", "c"]],
  ]);
});

Deno.test("freeVariables() ends an arrow's expression body where the expression ends", () => {
  expectFree([
    ["(v) => [(a) => a, a]", ["a"]],
    ["(v) => f((a) => a) + a", ["f", "a"]],
    ["(v) => v ? (a) => a : a", ["a"]],
    ["(v) => v ? (a) => a ? 1 : 2 : a", ["a"]],
    ["(v) => { const g = (a) => a; return a }", ["a"]],
    ["(v) => { const g = a => a * 2\n  return v * a }", ["a"]],
    ["(v) => class { f = (a) => a\n  g = a }", ["a"]],
    // A line break does not end it where the expression goes on.
    ["(v) => [(a) => a\n  .map((x) => x)\n  + a\n  instanceof A]", ["A"]],
    ["(v) => (a) => (b) => a + b + v", []],
  ]);
});

Deno.test("freeVariables() does not flag a name the function binds itself", () => {
  expectFree([
    // Shadowing done right: the inner binding covers the inner use.
    ["(factor) => { { const factor = 1; return factor } }", []],
    ["(x) => { const y = 1; { const y = 2; x += y } return x + y }", []],
    ["(xs) => xs.map((x) => xs.filter((y) => y > x).map((x) => x * 2))", []],
    ["(x) => { let s = 0; [1, 2].forEach((x) => { s += x }); return s + x }", []],
    // Nested functions using their own parameters, and closing over the outer ones.
    ["(xs) => xs.map((x) => (y) => x + y).map((g) => g(1))", []],
    ["(a) => function (b) { return function (c) { return a + b + c } }", []],
    // Templates with `${}` and names in their text; regexes and strings holding names.
    ["(x, y) => `factor ${x} ${`${y} ${`${x + 1}`}`} helper`", []],
    ["(s) => /factor\\/(helper)[/]/g.test(s) && 'factor' + \"helper\"", []],
    ["(a, b) => a / b / 2", []],
    // Async and generator functions.
    ["async (x) => { for await (const y of x) { await y } }", []],
    ["function* (n) { for (let i = 0; i < n; i++) yield i }", []],
    ["async function* (n) { for (let i = 0; i < n; i++) yield await i }", []],
    // Loops declaring destructured names.
    ["(o) => { let s = ''; for (const [k, v] of o.entries()) s += k + v; return s }", []],
    ["(o) => { for (const { a, b: [c] } of o) { a + c } }", []],
    ["(o) => { for (let i = 0, n = o.length; i < n; i++) o[i] }", []],
    // Class bodies using their parameters, fields and own name.
    [
      "(v) => { class Acc { static base = 10; total = v; add(x) { this.total += x; return Acc.base } } return new Acc().add(v) }",
      [],
    ],
    // Declarations after a regex or in a ternary.
    ["(s) => { if (s) /x/.test(s); const t = s ? { a: s } : { b: s }; return t }", []],
    // `typeof` on an undeclared name never throws.
    ["() => typeof notDeclared", []],
  ]);
});

Deno.test("freeVariables() puts a declaration after a scope read on too far in its real block", () => {
  expectFree([
    // The arrow's body is read on over the block; its `var` still belongs to the outer function.
    ["(x) => { const f = a => a\n{ var y = 1 }\nreturn y }", []],
    // A `for` whose body is a compound statement is read on to the end of the block; a later
    // declaration still binds in the whole block, before the loop too.
    ["(x) => { while (c) for (let b = 0; b < 3; b++) if (b) g(b)\nclass c {} }", ["g"]],
    ["(x) => { if (c) for (const b of x) if (b) g(b); else h(b)\nlet c = 1 }", ["g", "h"]],
    // A `var` as a loop's body ends at its `;`.
    ["(xs) => { for (let i = 0; i < 1; i++) var v = i; return [v, i] }", ["i"]],
  ]);
});

Deno.test("freeVariables() takes contextual keywords for names where they are names", () => {
  expectFree([
    ["(x) => x * target + get(x) + set + from + accessor + meta + of", [
      "target",
      "get",
      "set",
      "from",
      "accessor",
      "meta",
      "of",
    ]],
    ["(x) => ({ get, set, of, using })", ["get", "set", "of", "using"]],
    ["(xs) => { using(xs); using r = xs; return r }", ["using"]],
    // …and not where they are keywords, nor where they are bound.
    ["(x) => new.target ?? import.meta", []],
    ["(x) => ({ get a() { return 1 }, set a(v) {}, get: 1, set() {}, async *of() {} })", []],
    ["(x) => class { get = 1; set; accessor a = 2; static get b() { return 1 } }", []],
    ["(xs) => { for (const x of xs) x; for (const of of xs) of }", []],
    ["(x) => { const { get, set: of } = x; return get + of }", []],
    ["(target, get) => target + get", []],
  ]);
});

Deno.test("freeVariables() falls back to scope-light on input it does not understand", () => {
  // Understood: the inner `const factor` does not cover the outer use.
  expectFree([["(v) => { { const factor = 1 } return factor }", ["factor"]]]);
  expectFree([
    // Unbalanced brackets, or an unterminated string: a name bound anywhere counts as bound.
    ["(v) => { { const factor = 1 } return factor", []],
    ["(v) => { { const factor = 1 } return factor ]", []],
    ["(v) => { { const factor = 1 } return factor + 'oops }", []],
    // Names bound nowhere are still flagged.
    ["(v) => { { const y = 1 } return factor", ["factor"]],
  ]);
});
