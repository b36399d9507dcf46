// Messages between the supervisor (main thread) and task hosts, and between tasks over channels.
import type { Column } from "./_wire.ts";
import type { StreamRecord } from "./record.ts";
import type { ErrorInfo } from "./errors.ts";
import type { StagePermissions } from "./stage.ts";

/** One stage of a task's fused chain. */
export interface StageSpec {
  stage: string;
  kind: "source" | "processor" | "sink";
  module: string;
  export: string;
  config: unknown;
  maxRetries: number;
  tickMs: number;
  permissions?: StagePermissions;
  /** This stage generates watermarks from the `ts` of what it emits. */
  watermarks?: { outOfOrdernessMs: number };
}

/** Routing of an output edge. */
export interface RouteSpec {
  edge: string;
  /** "forward": instance i → i; "hash": by key partition; "round": round robin. */
  mode: "forward" | "hash" | "round";
  /** partition → instance, for "hash". */
  assignment: number[];
  /** Downstream instances that exist: instance index → port. */
  ports: [number, MessagePort][];
  capacity: number;
  batchSize: number;
  lingerMs: number;
  /** Side output name this edge carries ("" for the main output). */
  side: string;
  /**
   * Downstream instances that have finished: they had everything an earlier incarnation of this
   * task sent them, so what a replay would route to them is dropped.
   */
  finished?: number[];
  /**
   * Downstream instances that are dead and yet to be restarted: what goes to them is kept, as
   * for a receiver that restarted, and sent once their replacement connects (`connectOut`).
   */
  pending?: number[];
}

/** One input channel. */
export interface InputSpec {
  edge: string;
  from: number;
  port: MessagePort;
  /** Watermark the input starts at (so a new channel does not hold time back). */
  watermark: number;
  /** Which incarnation of the upstream instance sends (its batch `seq`s are its own). */
  sender: number;
}

/** Everything a task host needs to start. */
export interface TaskInit {
  t: "init";
  task: string;
  instance: number;
  parallelism: number;
  partitions: number;
  owned: number[];
  chain: StageSpec[];
  inputs: InputSpec[];
  outputs: RouteSpec[];
  heartbeatMs: number;
  idleTimeoutMs: number;
  /** How long the stages' `close()` hooks may take at the end of input (the pipeline's stop timeout). */
  closeTimeoutMs: number;
  /** When a `stop()` under way is forced (ms since the epoch): `close()` hooks end before it. */
  stopBy?: number;
  /**
   * Inputs `[edge, from]` whose instance above is dead and yet to be restarted: its replacement
   * connects later (`connectIn`), and the task does not finish before it has.
   */
  pending: [string, number][];
  /** Keyed-state snapshot to restore before processing (per stage name). */
  restore?: Record<string, StateSnapshot>;
  /** Source settings. */
  source?: { outOfOrdernessMs: number; batchSize: number };
  /** Wait for a `start` message before processing (set while the supervisor wires the graph). */
  hold?: boolean;
  /** Start with the stages' `onTick` hooks held, until `ticks on` (see that message). */
  ticksHeld?: boolean;
  /** Stateful task: acks of input batches wait until a checkpoint holding their effects is stored. */
  checkpoint?: boolean;
  /** A source task with a stateful stage below: its acks wait for checkpoints (see `askAhead`). */
  feedsState?: boolean;
  /** Mailbox capacity per input channel, in batches. */
  capacity: number;
  /** Checkpoints begun before this task: barriers of theirs (a replay's, say) are void here. */
  epoch?: number;
  /** Hold back inputs whose watermark is this far ahead of the slowest active one (ms). */
  alignMs?: number;
}

/** Keyed state of a stage: per state name, the partition snapshots; plus the extra hook state. */
export interface StateSnapshot {
  keyed: Record<string, [number, [string, unknown][]][]>;
  extra?: unknown;
  /** The watermark the stage had (finite), which it resumes at when restored. Per instance. */
  watermark?: number;
}

/** Counters one stage instance reports. */
export interface StageCounters {
  /** Records received. */
  in: number;
  /** Records emitted (for sinks: written). */
  out: number;
  /** Failed attempts (each retry counts). */
  failed: number;
  /** Records sent to the dead-letter sink. */
  deadLettered: number;
  /** Batches waiting in the mailbox. */
  mailbox: number;
  /** Free credits on the output channels. */
  credits: number;
  /** Batches processed. */
  batches: number;
  /** Total batch processing time, in ms. */
  latencyMs: number;
  /** Histogram bucket counts of batch latency, bounds in {@linkcode LATENCY_BUCKETS}. */
  latency: number[];
}

/** Upper bounds (ms) of the batch latency histogram buckets. */
export const LATENCY_BUCKETS = [0.5, 1, 2.5, 5, 10, 25, 50, 100, 250, 1000, Infinity];

/** A dead-letter entry: the original record, the reason, and where and when it failed. */
export interface DeadLetter {
  /** The original record. */
  record: StreamRecord<unknown>;
  /** Why it failed. */
  error: ErrorInfo;
  /** The stage it failed in. */
  stage: string;
  /** The instance it failed on. */
  instance: number;
  /** How many times it was tried. */
  attempts: number;
  /** When it was dead-lettered (ms since the epoch). */
  at: number;
}

/** Control, supervisor → task. */
export type ToTask =
  | TaskInit
  | {
    t: "connectOut";
    edge: string;
    to: number;
    port: MessagePort;
    /**
     * The receiver's last incarnation was killed, and said goodbye on its channels as it closed
     * them: the replay to the new one waits for that, the acks it sent last being on their way.
     */
    bye: boolean;
  }
  | {
    t: "connectIn";
    edge: string;
    from: number;
    port: MessagePort;
    watermark: number;
    sender: number;
  }
  /** Instance `from` above is gone for good: its channel (of incarnation `sender`) is dropped. */
  | { t: "dropIn"; edge: string; from: number; sender?: number }
  /**
   * Downstream instance `to` failed after it had passed everything on, and every instance below
   * it finished: what is kept for it is done, nothing more goes to it.
   */
  | { t: "dropOut"; edge: string; to: number }
  | { t: "pause"; edge: string; id: number }
  /** Watermark alignment off while a rescale drains the task's input (see `alignMs`), then on. */
  | { t: "align"; on: boolean }
  /**
   * Holds (off) or lets go (on) the stages' `onTick` hooks: during a rescale, the rescaled stage
   * and those below it emit nothing without input, which its pause holds (what they emitted would
   * be emitted again if a failure took them back to the pause's checkpoint).
   */
  | { t: "ticks"; on: boolean }
  | {
    t: "resume";
    edge: string;
    assignment: number[];
    add: [number, MessagePort][];
    remove: number[];
  }
  | {
    t: "snapshot";
    id: number;
    partitions: number[] | null | "dirty";
    drop: boolean;
    epoch?: number;
  }
  /**
   * Checkpoint `epoch` is stored: the input batches held for it are done. For an aligned one, so
   * is every batch sent ahead of its barrier on `edges` (those whose records end up in the state of
   * a stateful stage or a sink below).
   */
  | { t: "committed"; epoch: number; edges?: string[] }
  /**
   * Aligned checkpoint `id` begins: a source task puts barrier `id` into its outputs between two
   * pulls; every task lets the batches ahead of it go past its outputs' retention bound until it
   * has passed the barrier on (see `Sender.barrier`); a task whose inputs have all ended takes it
   * at once. `pause`: edges whose routing stops right behind the barrier (a rescale begins there;
   * see `Runtime.scale`). `holdTicks`: from its snapshot on, the task holds its stages' `onTick`
   * hooks until `ticks on` (the rescaled stage and those below it).
   */
  | { t: "checkpoint"; id: number; pause?: string[]; holdTicks?: boolean }
  /** Checkpoint `id` will not complete (an instance died, a rescale began): barriers up to it are void. */
  | { t: "abort"; id: number }
  /** A downstream checkpoint holding these batches was stored: they are done (acked). */
  | { t: "acked"; edge: string; to: number; seqs: number[] }
  | { t: "restore"; id: number; state: Record<string, StateSnapshot>; owned: number[] }
  | { t: "retire"; id: number }
  | { t: "stop" }
  /** A `stop()` is under way, forced at `at` (ms since the epoch): `close()` hooks end before. */
  | { t: "stopBy"; at: number }
  | { t: "start" }
  /** Stop at once: the task closes its stages (bounded) and answers `closed`. */
  | { t: "kill" }
  | { t: "dlqAck"; id: number; error?: ErrorInfo };

/** Control, task → supervisor. */
export type FromTask =
  | { t: "ready" }
  /**
   * A checkpoint is due; `last`: the task's input has ended and it has flushed, this one is its
   * final state (taken alone: it need not wait for the others').
   */
  | { t: "wantCheckpoint"; last?: boolean }
  /**
   * Barrier `id` came on every input (or they ended): a stateful task's snapshot of that moment
   * and the input batches it holds (as `reply`); a sink's writes of what came before are done.
   */
  | {
    t: "cpDone";
    id: number;
    state?: Record<string, StateSnapshot>;
    covered?: [string, number, number, number][];
  }
  | { t: "hb"; counters: Record<string, StageCounters>; watermark: number }
  | {
    t: "error";
    error: ErrorInfo;
    stage: string;
    instance: number;
    record?: StreamRecord<unknown>;
    /** The stage cannot start (config, permission): restarting would fail the same way. */
    fatal?: boolean;
    /** The task's counters as it failed (the last heartbeat's may be far behind). */
    counters?: Record<string, StageCounters>;
    /** It had passed everything on (see `passedOn`) when it failed: nothing to replay. */
    spent?: boolean;
  }
  | { t: "dlq"; id: number; entries: DeadLetter[] }
  | {
    t: "reply";
    id: number;
    state?: Record<string, StateSnapshot>;
    /** For a checkpoint: the input batches it holds, as `[edge, from, sender, seq]`. */
    covered?: [string, number, number, number][];
    /** For `retire`: the final counters. */
    counters?: Record<string, StageCounters>;
  }
  /** The task's input has ended: it flushes and finishes (a rescale can no longer move its state). */
  | { t: "ending" }
  /**
   * Everything is passed on: its stages flushed, its outputs ended and every batch on them acked
   * (a stateful task's final checkpoint is stored). Failing from now on, it has nothing to replay.
   */
  | { t: "passedOn" }
  | { t: "done"; counters: Record<string, StageCounters> }
  /** A stage's `close()` threw or hung after a kill or failure: reported, nothing restarts. */
  | { t: "closeError"; stage: string; error: ErrorInfo }
  /** Answer to `kill`: every stage was closed (or given up on); the host may end now. */
  | { t: "closed"; counters?: Record<string, StageCounters> };

/** Data plane, sender → receiver. */
export type ToReceiver =
  /** A batch; its records are packed (see `_wire.ts`). */
  | { t: "b"; seq: number; records: Column; wm?: number; cp?: number }
  | { t: "w"; wm: number }
  /** Checkpoint barrier `id`, in order behind the data (one may also ride on a batch, `cp`). */
  | { t: "c"; id: number }
  | { t: "eos" };

/**
 * Data plane, receiver → sender: `a`, batch `seq` is done (the sender forgets it); `f`, it is
 * processed but not done yet (held for a checkpoint, or what it derived not yet acked below): its
 * credit comes back, and the sender keeps it for a replay; `e`, goodbye: the receiver closes the
 * channel, nothing more comes from it.
 */
export type ToSender = { t: "a" | "f"; seq: number } | { t: "e" };
