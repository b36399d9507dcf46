// Plumbing of the connector conformance suite: running a pipeline in this process or in a child
// process behind the same interface, following it, and waiting with deadlines.
import {
  memoryDeadLetters,
  pipeline,
  type PipelineCounters,
  type StageOptions,
  type StageRef,
} from "../actors/mod.ts";

/** How a pipeline is hosted. */
export type Mode = "inline" | "workers";

/** A stage reference with its options in the pipeline. */
export interface Placed {
  // deno-lint-ignore no-explicit-any
  ref: StageRef<any, any>;
  options: StageOptions;
}

/** A linear pipeline: source → processors → sink. */
export interface PipelineSpec {
  mode: Mode;
  source: { ref: StageRef<never, unknown>; options: StageOptions };
  via: Placed[];
  sink: Placed;
  heartbeatMs: number;
  stopTimeoutMs: number;
}

/** What `_conformance_child.ts` reads. */
export interface ChildSpec extends PipelineSpec {
  counters: string;
}

/** The standard streams of a child-process run. */
export interface ChildIO {
  stdin?: WritableStream<Uint8Array>;
  stdout?: ReadableStream<Uint8Array>;
}

/** A pipeline being run, wherever it runs. */
export interface Running {
  /** Counters as last reported. */
  counters(): Promise<PipelineCounters>;
  /** Records dead-lettered so far. */
  deadLettered(): Promise<number>;
  /** Stops gracefully (in-process runs: returns once it is over; `done` carries the outcome). */
  stop(): Promise<void>;
  /** Settles when the run is over: rejects when it failed. */
  done: Promise<void>;
  /** The child's standard streams (child runs only). */
  io?: ChildIO;
}

/** Builds the pipeline a spec describes, with a memory dead-letter sink (not run yet). */
export function buildPipeline(spec: PipelineSpec, signals: boolean) {
  const dead = memoryDeadLetters();
  const p = pipeline({
    mode: spec.mode,
    signals,
    heartbeatMs: spec.heartbeatMs,
    stopTimeoutMs: spec.stopTimeoutMs,
    deadLetter: dead,
  });
  let flow = p.from(spec.source.ref, spec.source.options);
  for (const v of spec.via) flow = flow.via(v.ref, v.options);
  flow.to(spec.sink.ref, spec.sink.options);
  return { p, dead };
}

/** Runs a pipeline in this process. */
export function runHere(spec: PipelineSpec): Running {
  const { p, dead } = buildPipeline(spec, false);
  let settled = false;
  const done = p.run().then(() => {});
  done.catch(() => {}).finally(() => (settled = true)); // the caller observes `done`
  return {
    counters: () => Promise.resolve(p.counters()),
    deadLettered: () => Promise.resolve(dead.entries.length),
    stop: async () => {
      // A pipeline still compiling ignores stop(): ask until it is over.
      const deadline = Date.now() + spec.stopTimeoutMs + 5_000;
      while (!settled && Date.now() < deadline) {
        await p.stop().catch(() => {});
        if (!settled) await new Promise((r) => setTimeout(r, 20));
      }
    },
    done,
  };
}

const CHILD = new URL("./_conformance_child.ts", import.meta.url);

/** Runs a pipeline in a child Deno process, with piped stdin and/or stdout. */
export async function runInChild(
  spec: PipelineSpec,
  pipes: { stdin?: boolean; stdout?: boolean },
): Promise<Running> {
  const dir = await Deno.makeTempDir({ prefix: "sluice-conf-child-" });
  const counters = `${dir}/counters.json`;
  await Deno.writeTextFile(`${dir}/spec.json`, JSON.stringify({ ...spec, counters }));
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "--unstable-kv",
      "--unstable-worker-options",
      "-A",
      CHILD.pathname,
      `${dir}/spec.json`,
    ],
    stdin: pipes.stdin ? "piped" : "null",
    stdout: pipes.stdout ? "piped" : "null",
    stderr: "piped",
    env: { NO_COLOR: "1" },
  }).spawn();
  let stderr = "";
  const errors = child.stderr.pipeThrough(new TextDecoderStream()).pipeTo(
    new WritableStream({ write: (t) => void (stderr += t) }),
  );
  const read = async () => {
    try {
      return JSON.parse(await Deno.readTextFile(counters)) as {
        counters: PipelineCounters;
        deadLettered: number;
      };
    } catch {
      return { counters: {}, deadLettered: 0 };
    }
  };
  const done = (async () => {
    const status = await child.status;
    await errors;
    await Deno.remove(dir, { recursive: true }).catch(() => {});
    if (status.code !== 0) {
      throw new Error(`The child pipeline exited with ${status.code}: ${stderr.trim()}`);
    }
  })();
  done.catch(() => {});
  return {
    counters: async () => (await read()).counters,
    deadLettered: async () => (await read()).deadLettered,
    stop: async () => {
      try {
        child.kill("SIGTERM");
      } catch { /* already exited */ }
      await Promise.resolve();
    },
    done,
    io: {
      stdin: pipes.stdin ? child.stdin : undefined,
      stdout: pipes.stdout ? child.stdout : undefined,
    },
  };
}

/** Polls `check` every `everyMs` until it holds; throws `what()` after `ms`. */
export async function waitFor(
  check: () => boolean | Promise<boolean>,
  ms: number,
  what: () => string,
  everyMs = 20,
): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`Timed out after ${ms} ms waiting for ${what()}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

/** `promise`, or a rejection naming `what` once `ms` passed. */
export async function within<T>(promise: Promise<T>, ms: number, what: () => string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new Error(`Timed out after ${ms} ms waiting for ${what()}`)),
      ms,
    );
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** Follows a run's outcome: the check throws once it failed, or ended while it may not. */
export function watch(running: Running): (mayEnd?: boolean) => void {
  let error: unknown;
  let ended = false;
  running.done.then(() => (ended = true), (e) => (error = e));
  return (mayEnd = false) => {
    if (error) throw error;
    if (ended && !mayEnd) throw new Error("The pipeline ended early");
  };
}

/** A stage's counters summed over its instances. */
export function stageCounters(counters: PipelineCounters, stage: string) {
  const all = (counters[stage]?.instances ?? []).filter(Boolean);
  return {
    seen: all.length > 0,
    out: all.reduce((n, c) => n + c.out, 0),
    failed: all.reduce((n, c) => n + c.failed, 0),
    credits: all.reduce((n, c) => n + c.credits, 0),
    deadLettered: all.reduce((n, c) => n + c.deadLettered, 0),
  };
}
