// Runs one pipeline of the connector conformance suite in a child process (for the stdio
// connectors, whose external side is this process's standard streams): reads the spec from the
// JSON file named by the first argument, writes the counters to `spec.counters` every 50 ms and
// once more at the end, and stops gracefully on SIGTERM.
import { buildPipeline, type ChildSpec } from "./_conformance_io.ts";

const spec = JSON.parse(await Deno.readTextFile(Deno.args[0]!)) as ChildSpec;
const { p, dead } = buildPipeline(spec, true);

const report = (done: boolean) => {
  const tmp = `${spec.counters}.tmp`;
  const body = { counters: p.counters(), deadLettered: dead.entries.length, done };
  Deno.writeTextFileSync(tmp, JSON.stringify(body));
  Deno.renameSync(tmp, spec.counters);
};
const timer = setInterval(() => report(false), 50);
try {
  await p.run();
} finally {
  clearInterval(timer);
  report(true);
}
