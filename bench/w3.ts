// Benchmark W3: 1 M JSON events (~100 B) in a Kafka topic → parse → transform → another topic.
// Sluice (kafkaSource decoder "json" → map → kafkaSink, workers mode, several configurations)
// against the plain kafkajs loop (eachBatch → JSON.parse → transform → producer.send → resolve
// and commit), on the same broker, in the same run, from the same input topic (each side in its
// own consumer group, writing to its own output topic). Every output topic must hold exactly the
// N transformed records, with the same order-independent checksum and sample as the baseline's,
// or the benchmark exits with status 1.
//
//   bash scripts/services.sh up
//   deno run -A bench/w3.ts [--count N] [--partitions P] [--quick] [--configs 0,2] [--repeat R]
//
// Timing: output topics are created with message.timestamp.type=LogAppendTime, so the broker
// stamps every record it writes; records/s = N / (last append − first append) for every side
// ("steady", the ratio the goal is about), and N / (last append − start) including client
// start-up, worker start and group join ("total"). See bench/README.md.
import { loadavg } from "node:os";
import process from "node:process";
import { parseArgs } from "node:util";
import { services } from "../tests/integration/_services.ts";
import { median } from "./_common.ts";
import {
  benchKafka,
  checkBroker,
  createTopics,
  digestOutput,
  loadInput,
  type OutputDigest,
} from "./_w3_kafka.ts";
import { rawLoop } from "./_w3_raw.ts";
import { CONFIGS, sluiceRun } from "./_w3_sluice.ts";
import { cpuSince, sampleThreads } from "./_threads.ts";

const { values: args } = parseArgs({
  args: Deno.args,
  options: {
    count: { type: "string" },
    partitions: { type: "string", default: "4" },
    quick: { type: "boolean", default: false },
    configs: { type: "string" },
    repeat: { type: "string", default: "1" },
  },
});
const count = Number(args.count ?? (args.quick ? 100_000 : 1_000_000));
const partitions = Number(args.partitions);
const repeat = Number(args.repeat);
for (const [name, v] of [["count", count], ["partitions", partitions], ["repeat", repeat]]) {
  if (!Number.isInteger(v) || (v as number) < 1) {
    console.error(`Cannot run benchmark: --${name} is ${v}, not a positive integer`);
    Deno.exit(2);
  }
}
const picked = args.configs === undefined
  ? CONFIGS.map((_, i) => i)
  : args.configs.split(",").map(Number);
if (picked.some((i) => !Number.isInteger(i) || !CONFIGS[i])) {
  console.error(
    `Cannot run benchmark: --configs is "${args.configs}", expected indices 0..${
      CONFIGS.length - 1
    }`,
  );
  Deno.exit(2);
}

let brokers: string[];
try {
  brokers = services().kafkaBrokers;
  await checkBroker(brokers);
} catch (error) {
  console.error((error as Error).message);
  Deno.exit(2);
}

const fmt = (n: number) => Math.round(n).toLocaleString("en-US");
const SAMPLE_EVERY = 997;
const timeoutMs = 120_000 + count / 10;
const tag = `${Date.now().toString(36)}-${
  crypto.getRandomValues(new Uint32Array(1))[0]!.toString(36)
}`;
const input = `w3-in-${tag}`;
const kafka = benchKafka(brokers, "sluice-w3");
const admin = kafka.admin();
const topics: string[] = [input];
const groups: string[] = [];

/** One measured side of one round. */
interface Run {
  side: string;
  steady: number;
  total: number;
  cpu: number;
  threads: string;
  digest: OutputDigest;
  notes: string;
}
const runs: Run[] = [];

async function measure(
  side: string,
  go: (output: string, groupId: string) => Promise<{ startedAt: number; notes: string }>,
): Promise<Run> {
  const output = `w3-out-${runs.length}-${tag}`;
  const groupId = `w3-g-${runs.length}-${tag}`;
  topics.push(output);
  groups.push(groupId);
  await createTopics(admin, [output], partitions, true);
  const c0 = process.cpuUsage();
  const threads = sampleThreads();
  const { startedAt, notes } = await go(output, groupId);
  const cpu = cpuSince(c0);
  const threadReport = threads.stop();
  const digest = await digestOutput(kafka, output, count, SAMPLE_EVERY);
  await admin.deleteTopics({ topics: [output] }).catch(() => {});
  const steadyMs = Math.max(1, digest.lastAppend - digest.firstAppend);
  const run: Run = {
    side,
    steady: count / (steadyMs / 1000),
    total: count / ((digest.lastAppend - startedAt) / 1000),
    cpu,
    threads: threadReport,
    digest,
    notes,
  };
  console.log(
    `  ${side.padEnd(50)} ${fmt(run.steady).padStart(9)} rec/s steady ` +
      `(${(steadyMs / 1000).toFixed(2)} s), ${fmt(run.total).padStart(9)} rec/s total, ` +
      `${cpu.toFixed(2)} CPU s`,
  );
  runs.push(run);
  return run;
}

const startLoad = loadavg()[0]!;
let failed = "";
try {
  await admin.connect();
  await createTopics(admin, [input], partitions, false);
  const l0 = performance.now();
  const bytes = await loadInput(kafka, input, count, partitions);
  const loadS = (performance.now() - l0) / 1000;
  console.log(
    `W3: ${fmt(count)} events (${(bytes / count).toFixed(0)} B JSON each, ` +
      `${(bytes / 1e6).toFixed(1)} MB) loaded into ${input} (${partitions} partitions) in ` +
      `${loadS.toFixed(1)} s; ${navigator.hardwareConcurrency} cores, broker on this machine`,
  );
  for (let round = 0; round < repeat; round++) {
    if (repeat > 1) console.log(`round ${round + 1} of ${repeat}`);
    await measure("kafkajs eachBatch loop", async (output, groupId) => {
      const startedAt = Date.now();
      const r = await rawLoop(kafka, { input, output, groupId, count, timeoutMs });
      const inProcess = count / ((r.doneAt - r.firstMessageAt) / 1000);
      return {
        startedAt,
        notes: `${r.sends} sends (${fmt(r.produced / r.sends)} records each, ` +
          `${(r.sendMs / r.sends).toFixed(1)} ms each, ${
            (r.sendMs / 1000).toFixed(2)
          } s in all), ` +
          `parse+transform+stringify ${(r.transformMs / 1000).toFixed(2)} s; ` +
          `${fmt(inProcess)} rec/s from first fetch to N-th produced (in-process clock)`,
      };
    });
    for (const i of picked) {
      const c = CONFIGS[i]!;
      await measure(`sluice [${i}] ${c.label}`, async (output, groupId) => {
        const { startedAt, summary } = await sluiceRun(admin, brokers, c, {
          input,
          output,
          groupId,
          count,
          timeoutMs,
        });
        const sink = summary.stages["kafka-sink"]!;
        const busy = Object.entries(summary.stages)
          .map(([name, s]) => `${name} ${(s.latencyMs / 1000).toFixed(2)} s/${s.batches}`)
          .join(", ");
        const fails = summary.failures.length > 0
          ? `; FAILURES: ${JSON.stringify(summary.failures)}`
          : "";
        return {
          startedAt,
          notes: `${sink.batches} sink writes (${fmt(sink.out / Math.max(1, sink.batches))} ` +
            `records each, ${(sink.latencyMs / Math.max(1, sink.batches)).toFixed(1)} ms each); ` +
            `busy s/batches: ${busy}${fails}`,
        };
      });
    }
  }
  // Every output must be the same N records as the baseline's.
  const base = runs[0]!.digest;
  for (const r of runs) {
    const d = r.digest;
    const problems: string[] = [];
    if (d.count !== count) problems.push(`${d.count} records`);
    if (d.idsOnce !== count) problems.push(`${count - d.idsOnce} ids missing or repeated`);
    if (d.checksum !== base.checksum) problems.push("checksum differs from the baseline's");
    for (const [id, text] of base.sample) {
      if (d.sample.get(id) !== text) {
        problems.push(`id ${id}: ${d.sample.get(id)} vs baseline ${text}`);
        break;
      }
    }
    if (problems.length > 0) failed += `\n  ${r.side}: ${problems.join(", ")}`;
  }
} finally {
  await admin.deleteTopics({ topics }).catch((e) => console.warn(`cleanup: ${e.message}`));
  await admin.deleteGroups(groups).catch(() => {});
  await admin.disconnect();
}

if (failed) {
  console.error(`W3 FAILED: outputs differ from the expected ${fmt(count)} records:${failed}`);
  Deno.exit(1);
}
const sides = [...new Set(runs.map((r) => r.side))];
const bySide = new Map(sides.map((s) => [s, runs.filter((r) => r.side === s)]));
const rawSteady = median(bySide.get(sides[0]!)!.map((r) => r.steady));
const rawTotal = median(bySide.get(sides[0]!)!.map((r) => r.total));
console.log(
  `\noutputs identical: every side wrote the ${fmt(count)} records once, same checksum, ` +
    `same ${runs[0]!.digest.sample.size} sampled values`,
);
let best = "";
let bestRatio = 0;
// Only configurations that keep the baseline's guarantee (acks -1) compete for the goal.
for (const side of sides.slice(1).filter((s) => !s.includes("not idempotent"))) {
  const ratio = median(bySide.get(side)!.map((r) => r.steady)) / rawSteady;
  if (ratio > bestRatio) [best, bestRatio] = [side, ratio];
}
console.log(
  `${"side".padEnd(52)} ${"steady rec/s".padStart(12)} ${"ratio".padStart(6)} ` +
    `${"total rec/s".padStart(12)} ${"ratio".padStart(6)} ${"CPU s".padStart(6)}`,
);
for (const side of sides) {
  const rs = bySide.get(side)!;
  const steady = median(rs.map((r) => r.steady));
  const total = median(rs.map((r) => r.total));
  const mark = side === best ? "*" : " ";
  console.log(
    `${mark} ${side.padEnd(50)} ${fmt(steady).padStart(12)} ${
      (steady / rawSteady).toFixed(2).padStart(5)
    }× ` +
      `${fmt(total).padStart(12)} ${(total / rawTotal).toFixed(2).padStart(5)}× ` +
      `${median(rs.map((r) => r.cpu)).toFixed(2).padStart(6)}`,
  );
}
console.log(
  `best Sluice (*) with acks -1 like the loop: ${bestRatio.toFixed(2)}× the kafkajs loop ` +
    `(goal ≥ 0.9×: ` +
    `${bestRatio >= 0.9 ? "met" : "NOT met"})`,
);
console.log("\ndetails (last round):");
for (const side of sides) {
  const r = bySide.get(side)!.at(-1)!;
  console.log(`  ${side}\n    ${r.notes}\n    CPU s per thread: ${r.threads}`);
}
if (startLoad > 0.5) {
  console.log(
    `warning: the load average was ${startLoad.toFixed(1)} on ${navigator.hardwareConcurrency} ` +
      `cores before the runs (the broker runs here too): other processes shared the CPUs; ` +
      `compare CPU s as well as records/s`,
  );
}
