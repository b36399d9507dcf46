// Topology compiler: validates every stage before anything starts and fuses chains into tasks.
import type { StageDefinition, StagePermissions } from "./stage.ts";
import type { StageOptions, StageRef, Strategy } from "./stage_ref.ts";
import { ConfigError } from "./errors.ts";
import { formatPath, parseConfig } from "./_config.ts";
import { unsendable } from "./_clone.ts";
import { checkOptions, stageOptionsSchema } from "./_options.ts";
import type { StageSpec } from "./_protocol.ts";

/** A stage as the builder recorded it. */
export interface Node {
  id: number;
  name: string;
  ref: StageRef;
  options: StageOptions;
}

/** An edge as the builder recorded it. */
export interface Edge {
  from: number;
  to: number;
  keyed: boolean;
  side: string;
}

/** Resolved options of a stage. */
export interface Resolved {
  parallelism: number;
  capacity: number;
  batchSize: number;
  lingerMs: number;
  strategy: Strategy;
  maxRestarts: number;
  withinMs: number;
  maxRetries: number;
  fuse: boolean;
  tickMs: number;
  idleTimeoutMs: number;
  permissions: StagePermissions;
  stateful: boolean;
  align?: { maxDriftMs: number };
}

/** A group of fused stages, run as `parallelism` task instances. */
export interface Group {
  id: string;
  nodes: Node[];
  specs: StageSpec[];
  options: Resolved;
  /** Each stage's own supervision options: a fused stage keeps its own. */
  supervision: Map<string, Pick<Resolved, "strategy" | "maxRestarts" | "withinMs">>;
  parallelism: number;
  /** Partition → instance, for groups fed by keyed edges. */
  assignment: number[];
}

/** An edge between groups. */
export interface GroupEdge {
  id: string;
  from: Group;
  to: Group;
  mode: "forward" | "hash" | "round";
  side: string;
}

/** The compiled plan. */
export interface Plan {
  groups: Group[];
  edges: GroupEdge[];
}

const DEFAULTS = {
  parallelism: 1,
  capacity: 8,
  batchSize: 512,
  lingerMs: 5,
  strategy: "one_for_one" as Strategy,
  maxRestarts: 5,
  withinMs: 10_000,
  maxRetries: 2,
  fuse: true,
  tickMs: 100,
  idleTimeoutMs: 10_000,
};

/** Imports a stage module and returns its definition, checking its kind. */
export async function loadStage(ref: StageRef, name: string): Promise<StageDefinition> {
  let mod: Record<string, unknown>;
  try {
    mod = await import(ref.module);
  } catch (cause) {
    throw new ConfigError(`Cannot load stage "${name}": ${ref.module} did not import`, { cause });
  }
  const def = mod[ref.export] as StageDefinition | undefined;
  if (!def || typeof def !== "object" || !("kind" in def)) {
    throw new ConfigError(
      `Cannot load stage "${name}": ${ref.module} has no definition "${ref.export}"`,
    );
  }
  const hooks = def as Partial<Record<"config" | "open", unknown>>;
  if (
    typeof (hooks.config as { safeParse?: unknown } | undefined)?.safeParse !== "function" ||
    typeof hooks.open !== "function"
  ) {
    throw new ConfigError(
      `Cannot load stage "${name}": "${ref.export}" in ${ref.module} is not a stage definition ` +
        `(it needs a zod config schema and an open() hook: make it with defineSource, ` +
        `defineProcessor or defineSink)`,
    );
  }
  if (def.kind !== ref.kind) {
    throw new ConfigError(`Cannot use stage "${name}": it is a ${def.kind}, used as a ${ref.kind}`);
  }
  return def;
}

function resolve(
  node: Node,
  def: StageDefinition,
  defaults: StageOptions,
  partitions: number,
): Resolved {
  const where = `Cannot configure stage "${node.name}"`;
  checkOptions(stageOptionsSchema, node.ref.options, where);
  checkOptions(stageOptionsSchema, node.options, where);
  // An option passed as `undefined` is not set: it must not hide the default under it.
  const o = {
    ...DEFAULTS,
    ...defined(defaults),
    ...defined(node.ref.options),
    ...defined(node.options),
  };
  const own = node.options.parallelism ?? node.ref.options?.parallelism;
  // A pipeline-wide default parallelism does not multiply sources; one set on the source does.
  if (def.kind === "source" && o.parallelism !== 1 && !own) o.parallelism = 1;
  if (o.parallelism > partitions) {
    // Blame the option that set it: the stage's own, or the pipeline's default.
    const option = own === undefined ? "options.defaults.parallelism" : "options.parallelism";
    throw new ConfigError(
      `${where}: ${option}: must be an integer within 1..${partitions} (the partition count)`,
    );
  }
  return {
    ...o,
    permissions: o.permissions ?? def.permissions ?? "none",
    stateful: def.stateful ?? false,
  };
}

/** Why a stateful stage cannot run at `parallelism` on input that is not keyed. */
export function unkeyedState(stage: string, parallelism: number): string {
  return `Cannot run stage "${stage}" at parallelism ${parallelism}: it keeps keyed state, so ` +
    `its input must be keyed (put .keyBy() before it), or run it at parallelism 1`;
}

/** The options that are set: keys whose value is `undefined` are left out. */
function defined(options: StageOptions | undefined): StageOptions {
  return Object.fromEntries(Object.entries(options ?? {}).filter(([, v]) => v !== undefined));
}

/** Validates every node and fuses chains: the whole plan, before any worker starts. */
export async function compile(
  nodes: Node[],
  edges: Edge[],
  defaults: StageOptions,
  partitions: number,
): Promise<Plan> {
  const defs = new Map<number, StageDefinition>();
  const resolved = new Map<number, Resolved>();
  for (const node of nodes) {
    const def = await loadStage(node.ref, node.name || node.ref.export);
    if (!node.name) {
      node.name = def.name;
      for (let i = 2; nodes.some((n) => n !== node && n.name === node.name); i++) {
        node.name = `${def.name}${i}`;
      }
    }
    parseConfig(def, node.name, node.ref.config);
    // The config goes to the stage's worker as it was written: what zod accepts (z.any()) may
    // still not cross. Inline mode checks too, so that a pipeline runs in both or in neither.
    const stuck = unsendable(node.ref.config);
    if (stuck) {
      throw new ConfigError(
        `Cannot configure stage "${node.name}": ${formatPath("config", stuck.path)}: ` +
          `cannot be sent to a worker (${stuck.what})`,
        { site: { stage: node.name } },
      );
    }
    defs.set(node.id, def);
    resolved.set(node.id, resolve(node, def, defaults, partitions));
  }
  const outs = (id: number) => edges.filter((e) => e.from === id);
  const ins = (id: number) => edges.filter((e) => e.to === id);
  for (const node of nodes) {
    const kind = defs.get(node.id)!.kind;
    if (kind !== "source" && ins(node.id).length === 0) {
      throw new ConfigError(`Cannot build pipeline: stage "${node.name}" has no input`);
    }
    if (kind !== "sink" && outs(node.id).filter((e) => e.side === "").length === 0) {
      throw new ConfigError(`Cannot build pipeline: stage "${node.name}" has no downstream sink`);
    }
    // Keyed state is kept and checkpointed per partition of the record key: with several
    // instances, each must get the keys of the partitions it owns, or two would store the same.
    const { stateful, parallelism } = resolved.get(node.id)!;
    if (stateful && parallelism > 1 && ins(node.id).some((e) => !e.keyed)) {
      throw new ConfigError(unkeyedState(node.name, parallelism));
    }
  }
  // Stateless stages of equal parallelism fuse. So does anything at parallelism 1 on both sides,
  // keyed or stateful: one instance owns every partition, so the edge routes nothing (a stage
  // fused that way cannot be rescaled at run time; `fuse: false` keeps it apart).
  const fusable = (e: Edge): boolean => {
    const a = resolved.get(e.from)!, b = resolved.get(e.to)!;
    const single = a.parallelism === 1 && b.parallelism === 1;
    const plain = !e.keyed && !a.stateful && !b.stateful && a.parallelism === b.parallelism;
    return e.side === "" && outs(e.from).length === 1 && ins(e.to).length === 1 &&
      a.fuse && b.fuse && (plain || single);
  };
  const groupOf = new Map<number, Group>();
  const groups: Group[] = [];
  for (const node of nodes) {
    const inbound = ins(node.id);
    if (inbound.length === 1 && fusable(inbound[0]!)) continue; // joins its upstream's group
    const chain = [node];
    for (let cur = node;;) {
      const next = outs(cur.id);
      if (next.length !== 1 || !fusable(next[0]!)) break;
      cur = nodes.find((n) => n.id === next[0]!.to)!;
      chain.push(cur);
    }
    // A chain with a stateful stage checkpoints as a whole; its inputs are aligned when any
    // of its stages asks (the tightest drift wins), wherever in the chain that stage is.
    const drifts = chain.flatMap((n) => resolved.get(n.id)!.align?.maxDriftMs ?? []);
    const options = {
      ...resolved.get(node.id)!,
      stateful: chain.some((n) => resolved.get(n.id)!.stateful),
      ...(drifts.length > 0 ? { align: { maxDriftMs: Math.min(...drifts) } } : {}),
    };
    const group: Group = {
      id: chain.map((n) => n.name).join("+"),
      nodes: chain,
      specs: chain.map((n) => {
        const r = resolved.get(n.id)!;
        return {
          stage: n.name,
          kind: n.ref.kind,
          module: n.ref.module,
          export: n.ref.export,
          config: n.ref.config,
          maxRetries: r.maxRetries,
          tickMs: r.tickMs,
          permissions: r.permissions,
          watermarks: n.options.watermarks ?? n.ref.options?.watermarks,
        };
      }),
      options,
      supervision: new Map(chain.map((n) => {
        const { strategy, maxRestarts, withinMs } = resolved.get(n.id)!;
        return [n.name, { strategy, maxRestarts, withinMs }];
      })),
      parallelism: options.parallelism,
      assignment: [],
    };
    for (const n of chain) groupOf.set(n.id, group);
    groups.push(group);
  }
  const groupEdges: GroupEdge[] = [];
  for (const e of edges) {
    const from = groupOf.get(e.from)!, to = groupOf.get(e.to)!;
    if (from === to) continue;
    // Stateful groups may be rescaled at run time, so they are never forward-wired.
    const forward = from.parallelism === to.parallelism && !from.options.stateful &&
      !to.options.stateful;
    const mode = e.keyed ? "hash" : forward ? "forward" : "round";
    groupEdges.push({
      id: `${from.id}->${to.id}${e.side ? `:${e.side}` : ""}`,
      from,
      to,
      mode,
      side: e.side,
    });
  }
  return { groups, edges: groupEdges };
}
