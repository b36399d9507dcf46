import assert from "node:assert/strict";
import { compileFn, type InlineFn, inlineFn } from "../../actors/inline_fn.ts";
import { freeVariables } from "../../actors/_free_vars.ts";
import type { CompileReply } from "./fixtures/compile_worker.ts";

// Outer names the rejected functions close over.
const factor = 3;
const prefix = "id-";
const key = "k";
const list = [1, 2];
let counter = 0;
function helper(x: number): number {
  return x + 1;
}
function wrap(x: number): { x: number } {
  return { x };
}
type Item = { price: number; qty: number };
/** Known to the type checker only: undeclared at run time. */
declare const someUndeclaredName: unknown;

/** A function from verbatim JavaScript source (comments and layout kept, unlike Deno's emit). */
function js(source: string): unknown {
  return new Function(`return (${source});`)();
}

// deno-lint-ignore no-explicit-any
type AnyFn = (...args: any[]) => any;
/** [label, function, arguments for a round-trip check (none: only checked to be accepted)] */
const legal: [string, unknown, unknown[]?][] = [
  ["an arrow using property access", (v: Item) => v.price * v.qty, [{ price: 2, qty: 5 }]],
  ["a bare-parameter arrow", js("x => x + 1"), [1]],
  ["a default value naming an earlier parameter", (a: number, b = a) => a + b, [2]],
  [
    "destructuring parameters with rest and holes",
    ({ a, b: { c }, ...rest }: { a: number; b: { c: number }; d: number }, [d, , e]: number[]) =>
      a + c + rest.d + (d ?? 0) + (e ?? 0),
    [{ a: 1, b: { c: 2 }, d: 3 }, [4, 0, 5]],
  ],
  ["a named recursive function expression", function fact(n: number): number {
    return n <= 1 ? 1 : n * fact(n - 1);
  }, [5]],
  ["an async arrow", async (x: number) => await Promise.resolve(x * 2)],
  ["an async function", async function (x: number) {
    return await Promise.resolve(x);
  }],
  ["a generator function", function* (n: number) {
    for (let i = 0; i < n; i++) yield i;
  }],
  [
    "a method shorthand",
    {
      f(x: number) {
        return x * 2;
      },
    }.f,
    [4],
  ],
  [
    "a method named like a keyword",
    {
      if(x: number) {
        return x;
      },
    }.if,
    [4],
  ],
  [
    "an async method",
    {
      async g(x: number) {
        return await x;
      },
    }.g,
  ],
  [
    "a getter",
    Object.getOwnPropertyDescriptor({
      get total() {
        return 42;
      },
    }, "total")?.get,
    [],
  ],
  [
    "a class method",
    class {
      m(a = 1) {
        return a + 1;
      }
    }.prototype.m,
    [1],
  ],
  [
    "a computed-name method",
    {
      [Symbol.iterator](x: number) {
        return x;
      },
    }[Symbol.iterator],
    [3],
  ],
  ["strings containing names and quotes", (x: string) => "factor's " + 'say "helper"' + x, ["!"]],
  [
    "nested template literals",
    (x: number, y: string) => `a ${x} ${`b ${y} ${`c ${x + 1}`}`} // factor '`,
    [1, "z"],
  ],
  [
    "regex literals with names and //",
    (s: string) => /https?:\/\/factor\.com/.test(s) && /[/]helper'/.test(s),
    ["x"],
  ],
  ["division, not regex", (a: number, b: number) => a / b / 2 + a / b / 1, [8, 2]],
  ["object literal keys, shorthand, methods and computed keys", (a: string) => {
    const o = {
      a,
      b: a,
      c() {
        return 1;
      },
      [a]: 2,
      "d": 3,
      4: 5,
      get e() {
        return 6;
      },
      async: true,
      get: 7,
    };
    return [o.a, o.b, o.c(), o[a], o.d, o[4], o.e, o.async, o.get];
  }, ["q"]],
  [
    "keywords as property names",
    (o: Record<string, number>) => (o.class ?? 0) + (o.new ?? 0) + { if: 1, default: 2 }.if,
    [{ class: 1 }],
  ],
  [
    "optional chaining and nullish coalescing",
    (o?: { factor?: number[] }) => o?.factor?.[0] ?? o?.factor?.length,
    [{ factor: [9] }],
  ],
  ["class usage like new Map() and instanceof", (xs: string[]) => {
    const m = new Map<string, number>();
    for (const x of xs) m.set(x, (m.get(x) ?? 0) + 1);
    return m instanceof Map ? [...m.entries()] : [];
  }, [["a", "b", "a"]]],
  [
    "Math, JSON, Number and structuredClone",
    (x: number) =>
      JSON.parse(JSON.stringify(structuredClone({ v: Math.max(x, 1) }))).v +
      (Number.isNaN(x) ? 0 : 1),
    [5],
  ],
  ["crypto.randomUUID and globalThis", () => typeof crypto.randomUUID() + typeof globalThis],
  ["labels with break and continue", (rows: number[][]) => {
    let n = 0;
    outer: for (const row of rows) {
      for (const v of row) {
        if (v < 0) continue outer;
        if (v > 9) break outer;
        n += v;
      }
    }
    return n;
  }, [[[1, 2], [-1, 5], [3, 10, 4]]]],
  ["switch with case values and a ternary", (x: number) => {
    switch (x) {
      case 1:
        return "one";
      case 2: {
        const two = "two";
        return x > 1 ? two : "?";
      }
      default:
        return "many";
    }
  }, [2]],
  ["try/catch/finally", (s: string) => {
    let out = "";
    try {
      out = JSON.parse(s);
    } catch (err) {
      out = err instanceof SyntaxError ? "bad" : "?";
    } finally {
      out += "!";
    }
    return out;
  }, ["{"]],
  [
    "a destructured catch parameter",
    js(
      "(s) => { try { JSON.parse(s) } catch ({ name, message: m }) { return name + m.length > 0 } }",
    ),
    ["{"],
  ],
  [
    "nested arrows closing over parameters",
    (xs: number[]) => xs.map((x) => (y: number) => x + y).map((g) => g(1)),
    [[1, 2]],
  ],
  ["for loops with destructuring and several declarators", (o: Record<string, number>) => {
    let s = "";
    for (const [k, v] of Object.entries(o)) s += k + v;
    for (const k in o) s += k;
    for (let i = 0, n = 2; i < n; i++) s += i;
    const { a, ...others } = o, [first = 0] = [o.b];
    return s + a + Object.keys(others).length + first;
  }, [{ a: 1, b: 2 }]],
  ["a local class with fields, private members and static blocks", (v: number) => {
    class Acc {
      static base = 10;
      #hidden = 1;
      total = 0;
      add(x: number) {
        this.total += x + this.#hidden;
        return this;
      }
      get doubled() {
        return this.total * 2;
      }
      *[Symbol.iterator]() {
        yield this.total;
      }
      static {
        Acc.base += 1;
      }
    }
    return new Acc().add(v).doubled + Acc.base;
  }, [2]],
  ["numeric literals", () => 1e3 + 0x1f + 1_000 + Number(10n) + .5 + 1.5e-3 + 0b11, []],
  ["spread and rest", (...xs: number[]) => Math.max(...xs, ...[0]), [1, 5, 2]],
  ["typeof on an undeclared name", () => typeof someUndeclaredName === "undefined", []],
  ["this, arguments and new.target", function (this: unknown) {
    return [typeof this, arguments.length, new.target === undefined];
  }, [1, 2]],
  ["a function declared after use", (x: number) => {
    return twice(x);
    function twice(y: number) {
      return y * 2;
    }
  }, [3]],
  ["comments containing names and quotes", js("(x) => { // factor's\n /* helper */ return x }"), [
    1,
  ]],
  [
    "a regex right after an if condition",
    js("function (s) { if (s) /factor/.test(s); return s }"),
    [
      "q",
    ],
  ],
  ["destructuring assignment to its own locals", (x: number, y: number) => {
    let a = x, b = y;
    [a, b] = [b, a];
    ({ a } = { a: a + 10 });
    return [a, b];
  }, [1, 2]],
  ["a closure over its own local variable", (xs: number[]) => {
    let sum = 0;
    xs.forEach((x) => {
      sum += x;
    });
    return sum;
  }, [[1, 2, 3]]],
  ["types that Deno strips", <T>(x: unknown, y: T): Item | T => (x as Item) ?? y!, [null, 1]],
  [
    "tagged templates, in, ** and void",
    (o: object) => String.raw`a\n${"x" in o}` + 2 ** 3 + void 0,
    [{
      x: 1,
    }],
  ],
  [
    "an async generator method",
    {
      async *ag(n: number) {
        yield await n;
      },
    }.ag,
  ],
  [
    "object literals in both arms of a ternary",
    (n: number) => n < 0 ? { cursor: n, anchor: 0 } : { cursor: 0, anchor: n },
    [-1],
  ],
  [
    "a .catch() callback with a destructuring declaration",
    (make: () => Promise<number>) =>
      make().catch((er) => {
        const { signal } = er;
        return signal;
      }),
    [() => Promise.reject({ signal: 9 })],
  ],
  ["an `in` test before another declarator", (o: object) => {
    const n = "w" in o, t = typeof o;
    return `${n}${t}`;
  }, [{}]],
  [
    "for await and using declarations",
    js(
      "async (ys) => { for await (const y of ys) { using r = { [Symbol.dispose]() {} }; void r, y } }",
    ),
    [[1]],
  ],
];

/** [label, function, the outer names the message must list] */
const closures: [string, unknown, string][] = [
  ["an outer const used in the body", (x: number) => x * factor, "factor"],
  ["an outer const in a default value", (x: number, y = factor) => x + y, "factor"],
  ["an outer const in a template ${}", (x: number) => `${prefix}${x}`, "prefix"],
  ["an outer const in a shorthand property", () => ({ factor }), "factor"],
  ["an outer const in a computed key", (x: number) => ({ [key]: x }), "key"],
  ["an outer function called", (x: number) => helper(x), "helper"],
  ["an outer const inside a nested arrow", (xs: number[]) => xs.map((x) => x * factor), "factor"],
  [
    "an outer const after a string containing a quote",
    (x: string) => "it's" + x + prefix,
    "prefix",
  ],
  ["an outer const after a regex containing a quote", (s: string) => /a"b'/.test(s) && key, "key"],
  ["an outer const after a nested template", (x: number) => `a${`"${x}'`}` + key, "key"],
  ["an outer let assigned", (x: number) => (counter += x), "counter"],
  ["an outer array spread", () => [...list], "list"],
  ["an outer function called in an object spread", () => ({ ...wrap(1) }), "wrap"],
  [
    "an outer const in a method shorthand",
    {
      m(x: number) {
        return x * factor;
      },
    }.m,
    "factor",
  ],
  ["an outer const after a comment", js("(x) => { // it's\n return x * factor }"), "factor"],
  ["a destructured key name used as a variable", js("({ b: c }) => c + b"), "b"],
  ["an outer const used after a label", (x: number) => {
    done: if (x) break done;
    return factor;
  }, "factor"],
  ["an outer name member-accessed after typeof", () => typeof prefix.length, "prefix"],
  ["an outer const in a class field initializer", () =>
    new (class {
      v = factor;
    })().v, "factor"],
  ["several outer names", (x: number) => helper(x) * factor + helper(1), "helper, factor"],
];

for (const [label, fn, args] of legal) {
  Deno.test(`inlineFn() accepts ${label}`, async () => {
    const inline = inlineFn(fn, "map");
    if (args === undefined) return;
    const f = fn as AnyFn;
    assert.deepEqual(await compileFn<AnyFn>(inline)(...args), await f(...args));
  });
}

for (const [label, fn, names] of closures) {
  Deno.test(`inlineFn() rejects ${label}`, () => {
    const plural = names.includes(",") ? "s" : "";
    assert.throws(() => inlineFn(fn, "map"), (e: unknown) => {
      assert(e instanceof TypeError);
      assert.match(e.message, new RegExp(`outer variable${plural} ${names};`));
      assert.doesNotMatch(e.message, /\n/);
      return true;
    });
  });
}

Deno.test("inlineFn() rejects a function that references an outer variable, with a one-line message", () => {
  assert.throws(() => inlineFn((x: number) => x * factor, "map"), {
    name: "TypeError",
    message: "Cannot use map function: it references outer variable factor; inline functions " +
      "run in another worker and may use only their parameters and globals (pass values " +
      "through the stage config or use a stage module)",
  });
});

Deno.test("inlineFn() rejects non-functions", () => {
  for (const v of [42, "x => x", null, undefined, {}]) {
    assert.throws(() => inlineFn(v, "filter"), {
      name: "TypeError",
      message:
        /^Cannot use filter function: expected a function, got (number|string|null|undefined|object)$/,
    });
  }
});

Deno.test("inlineFn() rejects native and bound functions", () => {
  assert.throws(() => inlineFn(Math.max, "map"), {
    name: "TypeError",
    message: /max is a native or bound/,
  });
  const bound = ((x: number) => x).bind(null);
  assert.throws(() => inlineFn(bound, "map"), { name: "TypeError", message: /native or bound/ });
});

Deno.test("inlineFn() rejects class constructors", () => {
  assert.throws(() => inlineFn(class Point {}, "map"), {
    name: "TypeError",
    message: /it is a class/,
  });
});

Deno.test("inlineFn() rejects a method whose source does not compile on its own", () => {
  const o = {
    m() {
      return super.toString();
    },
  };
  assert.throws(() => inlineFn(o.m, "map"), {
    name: "TypeError",
    message: /does not compile on its own/,
  });
});

Deno.test("inlineFn() rewrites methods to function expressions", () => {
  assert.match(
    inlineFn(
      {
        f(x: number) {
          return x;
        },
      }.f,
      "map",
    ).fn,
    /^function \(x\)/,
  );
  assert.match(inlineFn({ async *g() {} }.g, "map").fn, /^async function\* \(\)/);
  assert.match(
    inlineFn(
      {
        async(x: number) {
          return x;
        },
      }.async,
      "map",
    ).fn,
    /^function \(x\)/,
  );
});

Deno.test("compileFn() round-trips generators and async functions", async () => {
  const gen = compileFn<(n: number) => Iterable<number>>(inlineFn(function* (n: number) {
    for (let i = 0; i < n; i++) yield i * i;
  }, "flatMap"));
  assert.deepEqual([...gen(4)], [0, 1, 4, 9]);
  const slow = compileFn<(x: number) => Promise<number>>(inlineFn(async (x: number) => {
    await new Promise((r) => setTimeout(r, 1));
    return x + 1;
  }, "map"));
  assert.equal(await slow(1), 2);
});

Deno.test("compileFn() rejects malformed input", () => {
  assert.throws(() => compileFn({ fn: "(x) => {" }), SyntaxError);
  assert.throws(() => compileFn({ fn: 42 } as unknown as InlineFn), TypeError);
});

Deno.test("freeVariables() reports names once, in first-use order", () => {
  assert.deepEqual(freeVariables("(a) => b + c(a) + b + d.e + a.f"), ["b", "c", "d"]);
  assert.deepEqual(freeVariables("function f(x) { return f(x) + x }"), []);
  assert.deepEqual(freeVariables("(x) => `${y}` + z"), ["y", "z"]);
});

Deno.test("compileFn() rebuilds inline functions in a real Web Worker", async () => {
  const worker = new Worker(new URL("./fixtures/compile_worker.ts", import.meta.url).href, {
    type: "module",
  });
  const pending = new Map<number, (reply: CompileReply) => void>();
  worker.onmessage = (e: MessageEvent<CompileReply>) => pending.get(e.data.id)?.(e.data);
  let nextId = 0;
  const run = (inline: InlineFn, ...args: unknown[]) =>
    new Promise<CompileReply>((resolve) => {
      const id = nextId++;
      pending.set(id, resolve);
      worker.postMessage({ id, inline, args });
    });
  try {
    const price = await run(inlineFn((v: Item) => v.price * v.qty, "map"), { price: 3, qty: 4 });
    assert.deepEqual(price, { id: 0, ok: true, value: 12 });
    const method = await run(
      inlineFn(
        {
          f(s: string) {
            return s.toUpperCase() + Math.max(1, 2);
          },
        }.f,
        "map",
      ),
      "a",
    );
    assert.deepEqual(method, { id: 1, ok: true, value: "A2" });
    const later = await run(inlineFn(async (x: number) => await Promise.resolve([x, x]), "map"), 7);
    assert.deepEqual(later, { id: 2, ok: true, value: [7, 7] });
    // Why closures are rejected: the worker does not have the outer variable.
    const closure = await run({ fn: "(x) => x * factor" }, 2);
    assert.equal(closure.ok, false);
    assert.match(closure.ok ? "" : closure.error, /^ReferenceError: factor is not defined/);
  } finally {
    worker.terminate();
  }
});
