/**
 * Word count over a TCP text stream — Flink's `SocketWindowWordCount`, in Sluice.
 *
 * TCP lines (`--host`, `--port`, like `socketTextStream`) → upper-case → split into words → key by
 * word → count per 1-second processing-time tumbling window → NDJSON files in `--output`
 * (`counts-000000.ndjson`, ..., a new file every `--rotate-ms`, each renamed into place whole).
 *
 * ```sh
 * nc -lk 9999                                   # terminal 1: type lines here
 * deno run -A examples/log_wordcount.ts --port 9999 --output out/wordcount
 *
 * # Self-contained: serves sample lines on the port itself and stops after 5 s.
 * deno run -A examples/log_wordcount.ts --demo --seconds 5
 * ```
 *
 * Each output line is `{ "windowStart", "windowEnd", "key": <word>, "count" }`. Stop with
 * Ctrl-C: the pipeline drains and the last part is completed.
 *
 * @module
 */
import { parseArgs } from "node:util";
import { flatMap, map, pipeline, window } from "../mod.ts";
import { tcpLinesSource } from "../connectors/net/mod.ts";
import { fileSink } from "../connectors/file/mod.ts";

const args = parseArgs({
  args: Deno.args,
  options: {
    host: { type: "string", default: "127.0.0.1" },
    port: { type: "string", default: "9999" },
    output: { type: "string", default: ".sluice/wordcount" },
    "rotate-ms": { type: "string", default: "10000" },
    seconds: { type: "string" },
    demo: { type: "boolean", default: false },
  },
}).values;

const host = args.host;
const port = Number(args.port);
const output = args.output;

/** Serves sample log lines to every client, a few per 10 ms, until `signal` aborts. */
function serveSampleLines(signal: AbortSignal): Deno.TcpListener {
  const listener = Deno.listen({ hostname: host, port });
  const words = ["error", "warn", "info", "disk", "network", "timeout", "retry", "user"];
  void (async () => {
    for await (const conn of listener) {
      void (async () => {
        const enc = new TextEncoder();
        for (let i = 0; !signal.aborted; i++) {
          const line = Array.from({ length: 5 }, (_, j) => words[(i * 7 + j * 3) % words.length])
            .join(" ");
          await conn.write(enc.encode(`${line}\n`)).catch(() => {});
          await new Promise((r) => setTimeout(r, 10));
        }
        conn.close();
      })();
    }
  })().catch(() => {});
  return listener;
}

const stopDemo = new AbortController();
const server = args.demo ? serveSampleLines(stopDemo.signal) : undefined;

const p = pipeline({ name: "log-wordcount" });
p.from(tcpLinesSource({ host, port }))
  .via(map((line: string) => line.toUpperCase()))
  .via(flatMap((line: string) => line.split(/[^\p{L}\p{N}_']+/u).filter((w) => w.length > 0)))
  .keyBy((word: string) => word)
  .via(window({
    type: "tumbling",
    sizeMs: 1000,
    time: "processing",
    aggregate: { count: { op: "count" } },
  }))
  .to(fileSink({
    path: `${output}/counts.ndjson`,
    format: "ndjson",
    rotate: { ms: Number(args["rotate-ms"]) },
  }));

console.log(`Counting words from tcp://${host}:${port} into ${output}/ (Ctrl-C to stop)`);
const timer = args.seconds === undefined
  ? undefined
  : setTimeout(() => void p.stop(), Number(args.seconds) * 1000);
const summary = await p.run();
clearTimeout(timer);
stopDemo.abort();
server?.close();
const counts = summary.stages.window;
console.log(`Done: ${counts?.in ?? 0} words in, ${counts?.out ?? 0} window counts written`);
