import assert from "node:assert/strict";
import {
  collect,
  KeyedState,
  pipeline,
  RetriableError,
  stage,
  type StageContext,
} from "../../actors/mod.ts";
import {
  httpSink,
  httpSinkStage,
  httpSource,
  type HttpSourceOptions,
  tcpLinesServer,
  tcpLinesSource,
} from "../../connectors/net/mod.ts";
import { hmacHex } from "../../connectors/net/_http_auth.ts";
import { fromArray } from "../../actors/testing.ts";

const fixtures = new URL("./fixtures/connector_stages.ts", import.meta.url);

/** Polls `check` until it returns true, failing after `ms`. */
async function until(check: () => Promise<boolean> | boolean, ms = 8000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error("Condition not met in time");
    await new Promise((r) => setTimeout(r, 20));
  }
}

function freePort(): number {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (l.addr as Deno.NetAddr).port;
  l.close();
  return port;
}

/** A sink that holds batches until `open()` is called, and counts what it wrote. */
async function gate() {
  const dir = await Deno.makeTempDir({ prefix: "sluice-gate-" });
  const gatePath = `${dir}/open`;
  const out = `${dir}/counts`;
  return {
    sink: stage(fixtures, { gate: gatePath, out }, {
      kind: "sink",
      export: "gatedSink",
      permissions: { read: [dir], write: [dir] },
    }),
    open: () => Deno.writeTextFile(gatePath, ""),
    written: async () =>
      (await Deno.readTextFile(out).catch(() => "")).split("\n").filter(Boolean)
        .reduce((n, l) => n + Number(l), 0),
    remove: () => Deno.remove(dir, { recursive: true }),
  };
}

const enc = new TextEncoder();

Deno.test("tcpLinesSource() reads lines from a local server in a worker", async () => {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  const served = (async () => {
    const conn = await listener.accept();
    await conn.write(enc.encode("alpha\nbeta\r\ngam"));
    await conn.write(enc.encode("ma é\nlast"));
    conn.close();
  })();
  const out = collect<string>();
  await pipeline({ mode: "workers", signals: false })
    .from(tcpLinesSource({ host: "127.0.0.1", port, reconnect: false }))
    .to(out.sink)
    .run();
  await served;
  listener.close();
  assert.deepEqual(await out.values(), ["alpha", "beta", "gamma é", "last"]);
  assert.equal((await out.records())[0]?.headers?.source, `tcp://127.0.0.1:${port}`);
  await out.clear();
});

Deno.test("tcpLinesSource() stops reading the socket while the pipeline does not pull", async () => {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  const line = enc.encode("x".repeat(1999) + "\n");
  const lines = 20_000; // 40 MB in all
  let written = 0;
  const served = (async () => {
    const conn = await listener.accept();
    for (let i = 0; i < lines; i++) {
      for (let at = 0; at < line.length;) at += await conn.write(line.subarray(at));
      written += line.length;
    }
    conn.close();
  })();
  const g = await gate();
  const p = pipeline({ mode: "inline", signals: false });
  p.from(tcpLinesSource({ port, reconnect: false })).to(g.sink);
  const running = p.run();
  try {
    // The sink holds everything: the server's writes must stall well before the end.
    let last = -1;
    await until(async () => {
      const now = written;
      const stalled = now === last && now > 0;
      last = now;
      await new Promise((r) => setTimeout(r, 200));
      return stalled;
    });
    assert.ok(written < (lines * line.length) / 2, `server wrote ${written} bytes`);
    assert.equal(await g.written(), 0);
    await g.open();
    await served;
    await running;
    assert.equal(await g.written(), lines);
  } finally {
    listener.close();
    await g.remove();
  }
});

Deno.test("tcpLinesSource() reconnects with backoff after the server closes", async () => {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  const conns: Deno.Conn[] = [];
  const served = (async () => {
    const first = await listener.accept();
    await first.write(enc.encode("one\n"));
    first.close();
    const second = await listener.accept();
    conns.push(second);
    await second.write(enc.encode("two\n"));
  })();
  const out = collect<string>();
  const p = pipeline({ mode: "workers", signals: false });
  p.from(tcpLinesSource({ port, backoffMs: 10 })).to(out.sink);
  const running = p.run();
  try {
    await until(async () => (await out.values()).length === 2);
    assert.deepEqual(await out.values(), ["one", "two"]);
  } finally {
    await p.stop();
    await running;
    await served;
    for (const c of conns) c.close();
    listener.close();
    await out.clear();
  }
});

Deno.test("tcpLinesServer() accepts clients and reads their lines in a worker", async () => {
  const port = freePort();
  const out = collect<string>();
  const p = pipeline({ mode: "workers", signals: false });
  p.from(tcpLinesServer({ port })).to(out.sink);
  const running = p.run();
  const clients: Deno.Conn[] = [];
  try {
    await until(async () => {
      try {
        clients.push(await Deno.connect({ hostname: "127.0.0.1", port }));
        return true;
      } catch {
        return false;
      }
    });
    clients.push(await Deno.connect({ hostname: "127.0.0.1", port }));
    await clients[0]!.write(enc.encode("a1\na2\n"));
    await clients[1]!.write(enc.encode("b1\n"));
    await clients[0]!.write(enc.encode("a3\n"));
    await until(async () => (await out.values()).length === 4);
    const values = await out.values();
    assert.deepEqual([...values].sort(), ["a1", "a2", "a3", "b1"]);
    assert.deepEqual(values.filter((v) => v.startsWith("a")), ["a1", "a2", "a3"]);
  } finally {
    for (const c of clients) c.close();
    await p.stop();
    await running;
    await out.clear();
  }
});

/** Starts an HTTP source pipeline in workers mode and waits until it answers. */
async function startHttp(
  options: Omit<HttpSourceOptions, "port">,
  sinkRef?: ReturnType<typeof stage>,
) {
  const port = freePort();
  const out = collect<unknown>();
  const p = pipeline({ mode: "workers", signals: false });
  p.from(httpSource({ port, ...options })).to(sinkRef ?? out.sink);
  const running = p.run();
  const url = `http://127.0.0.1:${port}${options.path ?? "/"}`;
  await until(async () => {
    try {
      const res = await fetch(url, { method: "GET" });
      await res.body?.cancel();
      return true;
    } catch {
      return false;
    }
  });
  return {
    url,
    out,
    stop: async () => {
      await p.stop();
      await running;
      await out.clear();
    },
  };
}

async function post(url: string, body: string | Uint8Array, headers: Record<string, string> = {}) {
  const res = await fetch(url, { method: "POST", body: body as BodyInit, headers });
  const json = await res.json();
  return { status: res.status, retryAfter: res.headers.get("retry-after"), json };
}

Deno.test("httpSource() checks the bearer token, body size and JSON, then delivers records", async () => {
  const http = await startHttp({
    path: "/ingest",
    auth: { bearer: "t0ken-s3cret" },
    maxBodyBytes: 1000,
    format: "ndjson",
    ackMode: "processed",
  });
  const auth = { authorization: "Bearer t0ken-s3cret" };
  try {
    assert.equal((await post(http.url, '{"a":1}\n')).status, 401);
    const wrong = await post(http.url, '{"a":1}\n', { authorization: "Bearer t0ken-s3creT" });
    assert.equal(wrong.status, 401);
    assert.ok(!JSON.stringify(wrong.json).includes("s3cret"));
    assert.equal((await post(http.url, "x".repeat(1001), auth)).status, 413);
    // Streamed without a length (chunked): counted while reading.
    const big = '{"big":"' + "y".repeat(600) + '"}\n';
    const res = await fetch(http.url, {
      method: "POST",
      body: new Blob([big, big]).stream(),
      headers: auth,
    });
    await res.body?.cancel();
    assert.equal(res.status, 413);
    const bad = await post(http.url, '{"a":1}\n{nope\n', auth);
    assert.equal(bad.status, 400);
    assert.match(String(bad.json.error), /line 2 is not JSON/);
    const ok = await post(http.url, '{"a":1}\n\n{"a":2}\n', auth);
    assert.deepEqual([ok.status, ok.json], [200, { processed: 2 }]);
    // Processed mode answers after the sink wrote the records: they are already there.
    assert.deepEqual(await http.out.values(), [{ a: 1 }, { a: 2 }]);
  } finally {
    await http.stop();
  }
});

Deno.test("httpSource() rejects a bad HMAC signature and accepts a good one", async () => {
  const secret = "hmac-secret";
  const http = await startHttp({ auth: { hmac: { secret, header: "x-hub-signature-256" } } });
  try {
    const body = JSON.stringify([{ id: 1 }, { id: 2 }]);
    const none = await post(http.url, body);
    assert.equal(none.status, 401);
    const bad = await post(http.url, body, {
      "x-hub-signature-256": `sha256=${await hmacHex(secret, body + " ")}`,
    });
    assert.equal(bad.status, 401);
    const good = await post(http.url, body, {
      "x-hub-signature-256": `sha256=${await hmacHex(secret, body)}`,
    });
    assert.deepEqual([good.status, good.json], [202, { accepted: 2 }]);
    await until(async () => (await http.out.values()).length === 2);
    assert.deepEqual(await http.out.values(), [{ id: 1 }, { id: 2 }]);
  } finally {
    await http.stop();
  }
});

Deno.test("httpSource() answers 503 with Retry-After while the pipeline is backed up", async () => {
  const g = await gate();
  const http = await startHttp({
    queueRecords: 20,
    acceptTimeoutMs: 300,
    retryAfterSec: 2,
  }, g.sink);
  let accepted = 0;
  try {
    let busy: Awaited<ReturnType<typeof post>> | undefined;
    for (let i = 0; i < 200 && !busy; i++) {
      const res = await post(http.url, JSON.stringify(Array.from({ length: 100 }, () => ({ i }))));
      if (res.status === 202) accepted += 100;
      else if (res.status === 503) busy = res;
      else assert.fail(`unexpected status ${res.status}`);
    }
    assert.ok(busy, "the source never answered 503");
    assert.equal(busy.retryAfter, "2");
    await g.open();
    await until(async () => (await post(http.url, "{}")).status === 202);
    accepted += 1;
    await until(async () => (await g.written()) === accepted);
  } finally {
    await g.open();
    await http.stop();
    await g.remove();
  }
});

Deno.test("httpSink() retries a 500 then succeeds with the same Idempotency-Key", async () => {
  const seen: { key: string | null; body: string; status: number }[] = [];
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, async (req) => {
    const body = await req.text();
    const status = seen.length === 0 ? 500 : 200;
    seen.push({ key: req.headers.get("idempotency-key"), body, status });
    return new Response(null, { status });
  });
  try {
    await pipeline({ mode: "workers", signals: false })
      .from(fromArray([{ value: { n: 1 }, ts: 0 }, { value: { n: 2 }, ts: 0 }]))
      .to(httpSink({ url: `http://127.0.0.1:${server.addr.port}/in`, backoffMs: 5 }))
      .run();
  } finally {
    await server.shutdown();
  }
  assert.deepEqual(seen.map((s) => s.status), [500, 200]);
  assert.equal(seen[0]!.body, '{"n":1}\n{"n":2}\n');
  assert.equal(seen[1]!.body, seen[0]!.body);
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", enc.encode(seen[0]!.body)));
  const expected = [...digest].map((b) => b.toString(16).padStart(2, "0")).join("");
  assert.equal(seen[0]!.key, expected);
  assert.equal(seen[1]!.key, expected);
});

Deno.test("httpSink() throws RetriableError after its retry budget without leaking headers", async () => {
  let calls = 0;
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, () => {
    calls++;
    return new Response(null, { status: 503 });
  });
  const abort = new AbortController();
  const ctx = {
    stage: "httpSink",
    instance: 0,
    parallelism: 1,
    partitions: 1,
    watermark: -Infinity,
    signal: abort.signal,
    now: () => Date.now(),
    emit: () => {},
    emitTo: () => {},
    deadLetter: () => {},
    keyed: () => new KeyedState(1),
    partitionOf: () => 0,
  } as StageContext<never>;
  try {
    const parsed = httpSinkStage.config.safeParse({
      url: `http://127.0.0.1:${server.addr.port}/in?token=q-secret`,
      headers: { authorization: "Bearer h-secret" },
      retries: 2,
      backoffMs: 1,
    });
    assert.ok(parsed.success);
    const sink = await httpSinkStage.open(parsed.data, ctx);
    const error = await sink.write([{ value: 1, ts: 0 }], ctx)?.then(() => undefined, (e) => e);
    assert.ok(error instanceof RetriableError);
    assert.equal(calls, 3);
    assert.match(error.message, /answered 503 after 3 attempts/);
    assert.ok(!/secret/.test(error.message), error.message);
  } finally {
    await server.shutdown();
  }
});
