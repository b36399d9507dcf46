// The W3 Sluice side: kafkaSource (decoder "json", its own group) → map(transformEvent) → kafkaSink, in
// workers mode, in one of several configurations. The pipeline is stopped once the output topic
// holds N records (polled with the admin client every 25 ms).
import { map, pipeline, type RunSummary } from "../mod.ts";
import { kafkaSink, kafkaSource } from "../connectors/kafka/mod.ts";
import type { kafkajs } from "../connectors/kafka/_deps.ts";
import { transformEvent, waitForOutput } from "./_w3_kafka.ts";

/** One Sluice configuration of the benchmark. */
export interface SluiceConfig {
  /** Short label for the report. */
  label: string;
  /** Instances of every stage (source, map, sink). */
  parallelism: number;
  /** Records per pull / batch (stage option `batchSize`, every stage). */
  batchSize: number;
  /** kafkaSource `maxBytesPerPartition`. */
  maxBytesPerPartition: number;
  /** kafkaSource `maxBufferedBatches`. */
  maxBufferedBatches?: number;
  /** `false`: the sink runs in its own worker(s) (`fuse: false`). */
  fuseSink: boolean;
  /** kafkaSink producer: idempotent with acks -1 (the default) or plain with acks 1. */
  idempotent: boolean;
}

/** The configurations tried, in order; `--configs` picks some by index. */
export const CONFIGS: SluiceConfig[] = [
  {
    label: "fused p1, batch 512 (defaults)",
    parallelism: 1,
    batchSize: 512,
    maxBytesPerPartition: 1 << 20,
    fuseSink: true,
    idempotent: true,
  },
  {
    label: "fused p1, batch 2048, 4 MiB fetch",
    parallelism: 1,
    batchSize: 2048,
    maxBytesPerPartition: 4 << 20,
    fuseSink: true,
    idempotent: true,
  },
  {
    label: "fused p2, batch 512",
    parallelism: 2,
    batchSize: 512,
    maxBytesPerPartition: 1 << 20,
    fuseSink: true,
    idempotent: true,
  },
  {
    label: "fused p2, batch 2048, 4 MiB fetch",
    parallelism: 2,
    batchSize: 2048,
    maxBytesPerPartition: 4 << 20,
    fuseSink: true,
    idempotent: true,
  },
  {
    label: "sink apart p1, batch 2048, 4 MiB fetch",
    parallelism: 1,
    batchSize: 2048,
    maxBytesPerPartition: 4 << 20,
    fuseSink: false,
    idempotent: true,
  },
  {
    label: "fused p1, batch 2048, 4 MiB, sink not idempotent",
    parallelism: 1,
    batchSize: 2048,
    maxBytesPerPartition: 4 << 20,
    fuseSink: true,
    idempotent: false,
  },
];

/** What a Sluice run gives back. */
export interface SluiceResult {
  /** `Date.now()` just before `run()`. */
  startedAt: number;
  summary: RunSummary;
}

/** Runs one configuration until the output topic holds `count` records, then stops it. */
export async function sluiceRun(
  admin: kafkajs.Admin,
  brokers: string[],
  c: SluiceConfig,
  o: { input: string; output: string; groupId: string; count: number; timeoutMs: number },
): Promise<SluiceResult> {
  const p = pipeline({
    name: `w3-${o.groupId}`,
    mode: "workers",
    signals: false,
    defaults: { batchSize: c.batchSize, parallelism: c.parallelism },
  })
    .from(kafkaSource<Parameters<typeof transformEvent>[0]>({
      brokers,
      topics: o.input,
      groupId: o.groupId,
      fromBeginning: true,
      decoder: "json",
      maxBytesPerPartition: c.maxBytesPerPartition,
      maxBufferedBatches: c.maxBufferedBatches ?? 4,
    }))
    .via(map(transformEvent), { name: "transform" })
    .to(
      kafkaSink({
        brokers,
        topic: o.output,
        ...(c.idempotent ? {} : { idempotent: false, acks: 1 as const }),
      }),
      { fuse: c.fuseSink },
    );
  const startedAt = Date.now();
  const run = p.run();
  let failed: unknown;
  run.catch((e) => (failed = e));
  try {
    await Promise.race([
      waitForOutput(admin, o.output, o.count, o.timeoutMs),
      run.then(() => {
        throw new Error("Cannot measure Sluice: the pipeline ended before the output was full");
      }),
    ]);
  } finally {
    await p.stop();
  }
  if (failed) throw failed;
  return { startedAt, summary: await run };
}
