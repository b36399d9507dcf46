// The connector conformance suite (tests/_connector_conformance.ts) for the connectors that need
// no server: generator, file source and sink, TCP lines (client and server), HTTP source and
// sink, stdin and stdout (in a child process, whose standard streams are the external side).
import assert from "node:assert/strict";
import {
  freePort,
  type GateLine,
  type HeldView,
  readOffset,
  sinkConformance,
  sourceConformance,
  waitFor,
} from "../_connector_conformance.ts";
import { generator } from "../../connectors/generator/mod.ts";
import { decodeLines, fileSink, fileSource } from "../../connectors/file/mod.ts";
import { httpSink, httpSource, tcpLinesServer, tcpLinesSource } from "../../connectors/net/mod.ts";
import { stdinSource, stdoutSink } from "../../connectors/stdio/mod.ts";

const enc = new TextEncoder();
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Line `i` of a text input: its number, a space and padding to `bytes` (newline included). */
function line(i: number, bytes: number): string {
  const head = `${i} `;
  return head + "x".repeat(Math.max(0, bytes - head.length - 1)) + "\n";
}

/** The number at the start of a line the gate sink wrote. */
const leadingNumber = (l: GateLine) => parseInt(String(l.v), 10);

/** Asserts that a producer's progress (`written()`) stopped and is well short of `total`. */
async function assertStalled(written: () => number, total: number, what: string): Promise<void> {
  const before = written();
  await sleep(300);
  assert.equal(written(), before, `${what} kept going while the source had no credit`);
  assert.ok(before < total / 2, `${what} got ${before} of ${total} bytes through`);
}

sourceConformance("generator", {
  records: 20_000,
  setup: (_mode, n) =>
    Promise.resolve({
      source: generator({ count: n, seed: 7 }),
      idOf: (l: GateLine) => (l.v as { id: number }).id,
      ends: true,
      cleanup: () => Promise.resolve(),
    }),
});

sourceConformance("fileSource", {
  records: 20_000,
  async setup(_mode, n) {
    const dir = await Deno.makeTempDir({ prefix: "sluice-conf-file-" });
    const path = `${Deno.realPathSync(dir)}/in.log`;
    const lineBytes = 100;
    const chunkBytes = 4096;
    const size = n * lineBytes;
    return {
      // Followed: the files stay open until the source is stopped (and closes them).
      source: fileSource({ path, format: "lines", chunkBytes, follow: true, pollMs: 50 }),
      via: [decodeLines()],
      // A pull hands out one chunk of about chunkBytes: whole lines, one crossing the limit.
      perPull: Math.ceil(chunkBytes / lineBytes) + 1,
      prepare: (n) =>
        Deno.writeTextFile(path, Array.from({ length: n }, (_, i) => line(i, lineBytes)).join("")),
      idOf: leadingNumber,
      held(view: HeldView) {
        assert.ok(
          view.delivered <= view.pulled * (Math.ceil(chunkBytes / lineBytes) + 1),
          `${view.pulled} chunks of about ${chunkBytes} bytes held ${view.delivered} lines`,
        );
        // The file is read only as far as the lines handed out, plus one read ahead.
        const offset = readOffset(path);
        assert.ok(offset >= 0, "the file is open while the source is held");
        const most = view.delivered * lineBytes + chunkBytes + 16_384;
        assert.ok(offset <= most, `read ${offset} bytes of ${size} for ${view.delivered} lines`);
        return Promise.resolve();
      },
      cleanup: () => Deno.remove(dir, { recursive: true }),
    };
  },
});

sourceConformance("tcpLinesSource", {
  records: 20_000,
  setup(_mode, n) {
    const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    const port = (listener.addr as Deno.NetAddr).port;
    const lineBytes = 2000;
    let written = 0;
    let conn: Deno.Conn | undefined;
    return Promise.resolve({
      // The server keeps the connection open: the source closes it when it is stopped.
      source: tcpLinesSource({ port }),
      async produce(n: number, _io: unknown, signal: AbortSignal) {
        conn = await listener.accept();
        signal.addEventListener("abort", () => {
          try {
            conn?.close();
          } catch { /* closed */ }
        });
        for (let i = 0; i < n; i++) {
          const bytes = enc.encode(line(i, lineBytes));
          for (let at = 0; at < bytes.length;) at += await conn.write(bytes.subarray(at));
          written += bytes.length;
        }
      },
      idOf: leadingNumber,
      held: () => assertStalled(() => written, n * lineBytes, "the TCP server"),
      cleanup() {
        try {
          conn?.close();
        } catch { /* closed */ }
        listener.close();
        return Promise.resolve();
      },
    });
  },
});

sourceConformance("tcpLinesServer", {
  records: 20_000,
  setup(_mode, n) {
    const port = freePort();
    const lineBytes = 2000;
    let written = 0;
    let conn: Deno.Conn | undefined;
    return Promise.resolve({
      source: tcpLinesServer({ port }),
      async produce(n: number, _io: unknown, signal: AbortSignal) {
        await waitFor(
          async () => {
            try {
              conn = await Deno.connect({ hostname: "127.0.0.1", port });
              return true;
            } catch {
              return signal.aborted;
            }
          },
          20_000,
          () => `the server on port ${port}`,
        );
        signal.addEventListener("abort", () => {
          try {
            conn?.close();
          } catch { /* closed */ }
        });
        for (let i = 0; i < n; i++) {
          const bytes = enc.encode(line(i, lineBytes));
          for (let at = 0; at < bytes.length;) at += await conn!.write(bytes.subarray(at));
          written += bytes.length;
        }
      },
      idOf: leadingNumber,
      held: () => assertStalled(() => written, n * lineBytes, "the TCP client"),
      cleanup() {
        try {
          conn?.close();
        } catch { /* closed */ }
        return Promise.resolve();
      },
    });
  },
});

sourceConformance("httpSource", {
  records: 4_000,
  setup() {
    const port = freePort();
    const queueRecords = 100;
    const perRequest = 25;
    let accepted = 0;
    let refused = 0;
    return Promise.resolve({
      source: httpSource({ port, format: "ndjson", acceptTimeoutMs: 200, queueRecords }),
      async produce(n: number, _io: unknown, signal: AbortSignal) {
        for (let from = 0; from < n && !signal.aborted;) {
          const body = Array.from(
            { length: Math.min(perRequest, n - from) },
            (_, k) => JSON.stringify({ i: from + k }),
          ).join("\n");
          let status = 0;
          try {
            const res = await fetch(`http://127.0.0.1:${port}/`, { method: "POST", body, signal });
            status = res.status;
            await res.body?.cancel();
          } catch {
            await sleep(20); // not listening yet
            continue;
          }
          if (status === 202) {
            accepted += Math.min(perRequest, n - from);
            from += perRequest;
          } else if (status === 503) {
            refused++;
            await sleep(20);
          } else throw new Error(`Cannot post: the source answered ${status}`);
        }
      },
      idOf: (l: GateLine) => (l.v as { i: number }).i,
      async held(view: HeldView) {
        // What the source took is exactly what it answered 202 for; the rest was refused.
        assert.equal(accepted, view.pulled, "records answered 202 are the records pulled");
        await waitFor(() => refused > 0, 5_000, () => "a 503 while the pipeline is backed up");
        const before = accepted;
        await sleep(300);
        assert.equal(accepted, before, "no request is accepted while the source has no credit");
      },
      cleanup: () => Promise.resolve(),
    });
  },
});

sourceConformance("stdinSource", {
  records: 4_000,
  child: { stdin: true },
  setup(_mode, n) {
    const lineBytes = 500;
    let written = 0;
    return Promise.resolve({
      source: stdinSource(),
      async produce(n: number, io: { stdin?: WritableStream<Uint8Array> }) {
        const writer = io.stdin!.getWriter();
        try {
          for (let i = 0; i < n; i++) {
            const bytes = enc.encode(line(i, lineBytes));
            await writer.write(bytes);
            written += bytes.length;
          }
          await writer.close();
        } finally {
          writer.releaseLock();
        }
      },
      idOf: leadingNumber,
      ends: true,
      async held(view: HeldView) {
        await assertStalled(() => written, n * lineBytes, "the writer of stdin");
        // The pipe (64 KiB) and the source's read buffer (64 KiB) hold the rest.
        const most = view.pulled * lineBytes + 2 * 65_536 + lineBytes;
        assert.ok(written <= most, `${written} bytes went into stdin for ${view.pulled} lines`);
      },
      cleanup: () => Promise.resolve(),
    });
  },
});

sinkConformance("fileSink", {
  async setup() {
    const dir = await Deno.makeTempDir({ prefix: "sluice-conf-fsink-" });
    const path = `${dir}/out.ndjson`;
    return {
      sink: fileSink({ path, format: "ndjson" }),
      async readIds() {
        const text = await Deno.readTextFile(path).catch(() => "");
        const lines = text.split("\n").slice(0, -1); // a last line without newline is not whole
        return lines.map((l) => (JSON.parse(l) as { i: number }).i);
      },
      cleanup: () => Deno.remove(dir, { recursive: true }),
    };
  },
});

/**
 * Reads what a writer puts into a pipe (a child's stdout, a FIFO) and can stop reading, so the
 * pipe fills up and the writer blocks: what a sink "wrote" must be in the pipe (at most its
 * 64 KiB) or read out.
 */
function pipeReader() {
  let text = "";
  let bytes = 0;
  let paused = false;
  let wake = () => {};
  let reading: Promise<void> = Promise.resolve();
  const decoder = new TextDecoder();
  return {
    start(stream: ReadableStream<Uint8Array>) {
      reading = (async () => {
        for await (const chunk of stream) {
          text += decoder.decode(chunk, { stream: true });
          bytes += chunk.length;
          while (paused) await new Promise<void>((r) => (wake = r));
        }
      })();
    },
    /** The record numbers of the whole lines read, once what is in the pipe was read too. */
    async readIds(): Promise<number[]> {
      if (!paused) {
        for (let last = -1, i = 0; last !== bytes && i < 25; i++) {
          last = bytes;
          await sleep(20);
        }
      }
      return text.split("\n").slice(0, -1).map((l) => (JSON.parse(l) as { i: number }).i);
    },
    hold() {
      paused = true;
    },
    release() {
      paused = false;
      wake();
    },
    done: () => reading,
  };
}

/** Acked lines may still sit in the pipe (64 KiB) or in the stream's read-ahead (64 KiB). */
const pipeSlack = (lineBytes: number) => Math.ceil((2 * 65_536) / lineBytes) + 1;

sinkConformance("fileSink (FIFO)", {
  records: 400,
  batchSize: 20,
  padBytes: 1000,
  async setup() {
    const dir = await Deno.makeTempDir({ prefix: "sluice-conf-fifo-" });
    const path = `${dir}/out.ndjson`;
    const made = await new Deno.Command("mkfifo", { args: [path] }).output();
    assert.ok(made.success, "mkfifo");
    const pipe = pipeReader();
    // Opening a FIFO waits for the other end: the sink's open() does.
    const opening = Deno.open(path, { read: true }).then((file) => pipe.start(file.readable));
    return {
      sink: fileSink({ path, format: "ndjson" }),
      readIds: () => pipe.readIds(),
      hold: () => pipe.hold(),
      release: () => pipe.release(),
      holdSlack: pipeSlack(1030),
      async cleanup() {
        pipe.release();
        await opening;
        await pipe.done();
        await Deno.remove(dir, { recursive: true });
      },
    };
  },
});

sinkConformance("httpSink", {
  setup() {
    const ids: number[] = [];
    let held: Promise<void> | undefined;
    let release = () => {};
    const server = Deno.serve(
      { hostname: "127.0.0.1", port: 0, onListen: () => {} },
      async (req) => {
        const body = await req.text();
        // Held: the request is not answered, so it is not stored yet either.
        while (held) await held;
        for (const l of body.split("\n")) if (l) ids.push((JSON.parse(l) as { i: number }).i);
        return new Response(null, { status: 200 });
      },
    );
    return Promise.resolve({
      sink: httpSink({ url: `http://127.0.0.1:${server.addr.port}/in`, retries: 1, backoffMs: 10 }),
      readIds: () => Promise.resolve([...ids]),
      hold() {
        held = new Promise((r) => (release = () => r()));
      },
      release() {
        held = undefined;
        release();
      },
      cleanup: () => server.shutdown(),
    });
  },
  unreachable: (port) =>
    httpSink({ url: `http://127.0.0.1:${port}/in`, retries: 1, backoffMs: 10, timeoutMs: 1000 }),
});

sinkConformance("stdoutSink", {
  child: { stdout: true },
  records: 400,
  batchSize: 20,
  padBytes: 1000,
  setup() {
    const pipe = pipeReader();
    return Promise.resolve({
      sink: stdoutSink({ format: "ndjson" }),
      attach: (io: { stdout?: ReadableStream<Uint8Array> }) => pipe.start(io.stdout!),
      readIds: () => pipe.readIds(),
      hold: () => pipe.hold(),
      release: () => pipe.release(),
      holdSlack: pipeSlack(1030), // {"i":…,"pad":"é…"} and a newline
      cleanup: () => pipe.done(),
    });
  },
});
