// The connector conformance suite: every source proves it stops pulling without credit and
// resumes, every sink proves it acks only after the write is readable on its server, and every
// connector closes its clients. A connector's test file calls `sourceConformance(name, harness)`
// or `sinkConformance(name, harness)` once; each registers Deno.tests named "<name> conforms: …".
//
// Closing is shown three ways. Deno's resource and op sanitizers (Deno 2.9 turns them off by
// default: these tests turn them on) catch Deno sockets, listeners, files, timers and pending
// reads. They do not see the sockets of npm drivers (node:net), so the process's own sockets to
// the server port are counted from /proc before and after. And fixtures check the server's view
// (Redis CLIENT LIST, Kafka group members, connections through a proxy). Besides a normal end,
// each connector is killed by hand the way the runtime kills a stage (its signal aborts, `close`
// is never called) and must release its clients all the same.
//
// The cases live in _conformance_source.ts and _conformance_sink.ts. Not a test file itself.
import type { StageRef } from "../actors/mod.ts";
import type { ChildIO, Mode } from "./_conformance_io.ts";
import { heldAndReleased, killed as sourceKilled } from "./_conformance_source.ts";
import { acksWhenDurable, killed as sinkKilled, unreachable } from "./_conformance_sink.ts";

export type { ChildIO, Mode };
export { waitFor } from "./_conformance_io.ts";
export { freePort, readOffset, socketsTo } from "./_conformance_os.ts";
export { HoldingProxy } from "./_holding_proxy.ts";

/** Deno 2.9 runs tests without the resource and op sanitizers unless asked: these ask. */
const SANITIZE = { sanitizeResources: true, sanitizeOps: true } as const;

/** One line the gate sink wrote: the record's key and value (strings cut to 64 characters). */
export interface GateLine {
  k?: string;
  v: unknown;
}

/** What a source fixture is told while the pipeline is held with no credit. */
export interface HeldView {
  /** Records the source handed out (its `out` counter). */
  pulled: number;
  /** Records that went into the gate sink's channel (after the decoders, if any). */
  delivered: number;
  /** The bound on `delivered`: capacity × batchSize + a batch waiting + one pull. */
  bound: number;
  /** Records made available in all. */
  records: number;
}

/** One source under test, set up for one run. */
export interface SourceFixture {
  /** The source. */
  // deno-lint-ignore no-explicit-any
  source: StageRef<never, any>;
  /** Stateless processors after it (decoders; fused with the source). */
  // deno-lint-ignore no-explicit-any
  via?: StageRef<any, any>[];
  /** Most records one pull puts into the channel (after `via`). Default: the batch size. */
  perPull?: number;
  /** Makes records 0..n-1 available before the pipeline starts. */
  prepare?(n: number): Promise<void>;
  /**
   * Makes records 0..n-1 available while the pipeline runs, from outside (a producer that blocks
   * when the source stops reading resolves only once everything was taken). Stops on `signal`.
   */
  produce?(n: number, io: ChildIO, signal: AbortSignal): Promise<void>;
  /** The record number of a line the gate sink wrote. */
  idOf(line: GateLine): number;
  /** The source ends by itself once it has read everything (else the test stops it). */
  ends?: boolean;
  /** Checks the external read position while held (committed offsets, pending entries, …). */
  held?(view: HeldView): Promise<void>;
  /** Checks the external side once every record arrived and the pipeline ended. */
  drained?(n: number): Promise<void>;
  /** Checks the server's view once the source was killed (its clients are gone). */
  killed?(): Promise<void>;
  /** Releases what the fixture holds (clients, servers, files). */
  cleanup(): Promise<void>;
}

/** How to test one source. */
export interface SourceHarness {
  /** Modes to run in. Default both. */
  modes?: Mode[];
  /** Records made available (N). Default 2000. */
  records?: number;
  /** `batchSize` of the source. Default 50. */
  batchSize?: number;
  /** `capacity` of the gate sink's input channel. Default 2. */
  capacity?: number;
  /** Server port: the process must end with no more sockets to it than before. */
  serverPort?: number;
  /** Run the pipeline in a child process with these standard streams piped (stdio). */
  child?: { stdin?: boolean; stdout?: boolean };
  /** Sets a fixture up for a run of `n` records. */
  setup(mode: Mode, n: number): Promise<SourceFixture>;
}

/** One sink under test, set up for one run. */
export interface SinkFixture {
  /** The sink; it gets records `{ key: "r<i>", value: { i, pad } }`. */
  sink: StageRef<unknown, never>;
  /** Takes the child's standard streams (child runs only). */
  attach?(io: ChildIO): void;
  /** The record numbers readable on the server right now, read with a separate client. */
  readIds(): Promise<number[]>;
  /** Makes the server side hang: nothing the sink sends reaches it (or is answered). */
  hold?(): void | Promise<void>;
  /** Lets the server side go on. */
  release?(): void | Promise<void>;
  /** Records the sink may ack while held beyond the readable ones (a pipe buffer). Default 0. */
  holdSlack?: number;
  /** Connections the sink holds to the server right now (seen by a proxy); 0 after the run. */
  connections?(): number;
  /** Releases what the fixture holds. */
  cleanup(): Promise<void>;
}

/** How to test one sink. */
export interface SinkHarness {
  /** Modes to run in. Default both. */
  modes?: Mode[];
  /** Records written (N). Default 500. */
  records?: number;
  /** Records per batch (and per ack). Default 50. */
  batchSize?: number;
  /** Padding of each record's value, bytes. Default 16. */
  padBytes?: number;
  /** Server port: the process must end with no more sockets to it than before. */
  serverPort?: number;
  /** Run the pipeline in a child process with these standard streams piped (stdio). */
  child?: { stdin?: boolean; stdout?: boolean };
  /** Sets a fixture up. */
  setup(mode: Mode): Promise<SinkFixture>;
  /** The same sink writing to `127.0.0.1:port`, where nothing listens. */
  unreachable?(port: number): StageRef<unknown, never>;
  /** How long what a kill starts (closing, disconnecting) may take to end, ms. Default 300. */
  killSettleMs?: number;
}

/**
 * Registers the source conformance tests of a connector, in each mode: with a sink that takes no
 * record (so no credit comes back) the source stops pulling within the channel bound, and its
 * server shows it; released, every record arrives; afterwards no client is left open. And
 * (unless it runs in a child) killed by hand, it releases its clients.
 */
export function sourceConformance(name: string, harness: SourceHarness): void {
  for (const mode of harness.modes ?? ["inline", "workers"]) {
    Deno.test({
      name:
        `${name} conforms: stops pulling without credit, resumes and closes its clients (${mode})`,
      ...SANITIZE,
      fn: () => heldAndReleased(harness, mode),
    });
  }
  if (harness.child) return;
  Deno.test({
    name: `${name} conforms: releases its clients when the stage is killed`,
    ...SANITIZE,
    fn: () => sourceKilled(harness),
  });
}

/**
 * Registers the sink conformance tests of a connector, in each mode: at each ack of the source
 * the records up to it are readable on the server by another client, and none is acked while the
 * server is held; afterwards no client is left open. With an `unreachable` variant: nothing is
 * acked nor dead-lettered while its writes fail (they are retried). And (unless it runs in a
 * child) killed by hand, it releases its clients.
 */
export function sinkConformance(name: string, harness: SinkHarness): void {
  for (const mode of harness.modes ?? ["inline", "workers"]) {
    Deno.test({
      name:
        `${name} conforms: acks only after the write is durable and closes its clients (${mode})`,
      ...SANITIZE,
      fn: () => acksWhenDurable(harness, mode),
    });
  }
  if (harness.unreachable) {
    // Workers only: a forced stop in inline mode leaves the runtime's retry timer behind.
    Deno.test({
      name: `${name} conforms: acks nothing while its server is unreachable, retrying the write`,
      ...SANITIZE,
      fn: () => unreachable(harness, "workers"),
    });
  }
  if (harness.child) return;
  Deno.test({
    name: `${name} conforms: releases its clients when the stage is killed`,
    ...SANITIZE,
    fn: () => sinkKilled(harness),
  });
}
