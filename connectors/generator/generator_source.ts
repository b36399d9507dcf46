/**
 * `generator`: a deterministic, rate-controlled source of synthetic e-commerce events, for
 * demos, tests and benchmarks.
 *
 * @module
 */
import { z } from "./_deps.ts";
import { parseConfig } from "../../actors/_config.ts";
import type { StreamRecord } from "../../actors/record.ts";
import { defineSource, type PullOptions, type SourceDefinition } from "../../actors/stage.ts";
import type { StageOptions, StageRef } from "../../actors/stage_ref.ts";
import { sleep } from "../../actors/_sleep.ts";

/** Kind of an e-commerce event. */
export type EcommerceEventType = "view" | "cart" | "purchase";

/** One synthetic e-commerce event, as made by {@linkcode generator}. */
export interface EcommerceEvent {
  /** Sequence number, `0 ≤ id < count`; unique within a run. */
  id: number;
  /** User, `"user-<n>"` with `0 ≤ n < users`. */
  userId: string;
  /** Product, one of the configured SKUs (also the record key). */
  sku: string;
  /** What happened. */
  type: EcommerceEventType;
  /** Unit price in integer cents (fixed per SKU), so sums are exact. */
  price: number;
  /** Quantity, 1 to 5. */
  qty: number;
  /** Event time, ms: `startTs + id * tsStepMs`. */
  ts: number;
}

const weight = z.number().min(0).finite();

const generatorConfig: z.ZodType<GeneratorConfig, z.ZodTypeDef, GeneratorOptions> = z.object({
  count: z.number().int().safe().min(0),
  seed: z.number().int().safe(),
  ratePerSec: z.number().positive().finite().optional(),
  startTs: z.number().finite().default(Date.UTC(2024, 0, 1)),
  skus: z.union([z.number().int().safe().positive(), z.array(z.string().min(1)).min(1)]).default(
    100,
  ),
  users: z.number().int().safe().positive().default(1000),
  tsStepMs: z.number().min(0).finite().default(1),
  mix: z.object({ view: weight, cart: weight, purchase: weight }).strict()
    .refine((m) => m.view + m.cart + m.purchase > 0, "weights must not all be 0")
    .default({ view: 1, cart: 1, purchase: 1 }),
}).strict();

/** Config of {@linkcode generator} as validated: {@linkcode GeneratorOptions} with defaults applied. */
export type GeneratorConfig =
  & Required<Omit<GeneratorOptions, "ratePerSec">>
  & Pick<GeneratorOptions, "ratePerSec">;

/** Config of {@linkcode generator}, as written: only `count` and `seed` are required. */
export interface GeneratorOptions {
  /** Events to produce in total (over all instances); the source ends after the last one. */
  count: number;
  /** PRNG seed: the same seed and config give the same events, in any mode. */
  seed: number;
  /** Events per second over all instances. Default: as fast as the pipeline pulls. */
  ratePerSec?: number;
  /** Event time of event 0, ms. Default `Date.UTC(2024, 0, 1)`. */
  startTs?: number;
  /** Number of SKUs (named `sku-0000`, ...) or the SKU names themselves. Default 100. */
  skus?: number | string[];
  /** Number of distinct users. Default 1000. */
  users?: number;
  /** Event-time step between consecutive events, ms. Default 1. */
  tsStepMs?: number;
  /** Relative weights of event types. Default `{ view: 1, cart: 1, purchase: 1 }` (a third each). */
  mix?: { view: number; cart: number; purchase: number };
}

/** 32-bit mix of two integers (murmur3 finaliser over a golden-ratio combination). */
function mix32(a: number, b: number): number {
  let h = (a ^ Math.imul(b + 0x7f4a7c15, 0x9e3779b1)) >>> 0;
  h = Math.imul(h ^ (h >>> 16), 0x85ebca6b);
  h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35);
  return (h ^ (h >>> 16)) >>> 0;
}

/**
 * The `k`-th float in [0, 1) (k ≥ 1) of mulberry32, a small fast PRNG, seeded with `seed`. Its
 * state only steps by a constant, so any draw is reached directly: no generator object per event.
 */
function mulberry32(seed: number, k: number): number {
  let t = (seed + k * 0x6d2b79f5) >>> 0;
  t = Math.imul(t ^ (t >>> 15), t | 1);
  t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
}

/** Most users whose names the generator keeps, made once each. */
const USER_NAMES = 65_536;

/** Makes event `id`: a pure function of the config and `id`, so any instance can make any id. */
function eventMaker(config: GeneratorConfig): (id: number) => StreamRecord<EcommerceEvent> {
  const { seed, users, startTs, tsStepMs, mix } = config;
  const skus = typeof config.skus === "number"
    ? Array.from({ length: config.skus }, (_, i) => `sku-${String(i).padStart(4, "0")}`)
    : config.skus;
  const prices = skus.map((_, i) => 99 + Math.floor(mulberry32(mix32(seed, -1 - i), 1) * 20_000));
  const total = mix.view + mix.cart + mix.purchase;
  const viewBelow = mix.view / total;
  const cartBelow = (mix.view + mix.cart) / total;
  // User names are made once each, on first use: the same strings, without formatting a number
  // per event. Past USER_NAMES users they are formatted each time (no table that large).
  const userNames: (string | undefined)[] = users <= USER_NAMES ? new Array(users) : [];
  const userName = users <= USER_NAMES
    ? (u: number) => userNames[u] ??= `user-${u}`
    : (u: number) => `user-${u}`;
  return (id) => {
    const draws = mix32(seed, id);
    const s = Math.floor(mulberry32(draws, 1) * skus.length);
    const sku = skus[s]!;
    const r = mulberry32(draws, 2);
    const type: EcommerceEventType = r < viewBelow ? "view" : r < cartBelow ? "cart" : "purchase";
    const ts = startTs + id * tsStepMs;
    const value: EcommerceEvent = {
      id,
      userId: userName(Math.floor(mulberry32(draws, 3) * users)),
      sku,
      type,
      price: prices[s]!,
      qty: 1 + Math.floor(mulberry32(draws, 4) * 5),
      ts,
    };
    return { key: sku, value, ts };
  };
}

/**
 * The `generator` source definition: config {@linkcode GeneratorOptions}. Instance `i` of `n`
 * makes the events whose `id % n === i`, at `ratePerSec / n` each. Prefer the
 * {@linkcode generator} builder.
 *
 * @example
 * ```ts
 * import { generatorSource } from "@sluice/sluice";
 * import assert from "node:assert/strict";
 *
 * assert.equal(generatorSource.kind, "source");
 * assert.equal(generatorSource.name, "generator");
 * ```
 */
export const generatorSource: SourceDefinition<EcommerceEvent, GeneratorConfig> = defineSource({
  name: "generator",
  config: generatorConfig,
  open(config, ctx) {
    const make = eventMaker(config);
    const step = ctx.parallelism;
    // A position is the next id to make: resumed, it goes on right after a checkpoint's input.
    let next = typeof ctx.resumeFrom === "number" ? ctx.resumeFrom : ctx.instance;
    // Token bucket: starts with one token, refills at the instance's rate, holds ≤ 50 ms of burst
    // so a source that was not pulled for a while does not flood the pipeline afterwards.
    const perMs = config.ratePerSec === undefined ? Infinity : config.ratePerSec / step / 1000;
    const burst = Math.max(1, perMs * 50);
    let tokens = 1;
    let last = ctx.now();
    return {
      async pull({ max, signal }: PullOptions) {
        if (next >= config.count) return null;
        let allowed = max;
        if (perMs !== Infinity) {
          const now = ctx.now();
          tokens = Math.min(burst, tokens + (now - last) * perMs);
          last = now;
          if (tokens < 1) {
            await sleep(Math.ceil((1 - tokens) / perMs), signal);
            if (signal.aborted) return null;
            const woke = ctx.now();
            tokens = Math.min(burst, tokens + (woke - last) * perMs);
            last = woke;
          }
          allowed = Math.max(1, Math.min(max, Math.floor(tokens)));
          tokens -= allowed;
        }
        const records: StreamRecord<EcommerceEvent>[] = [];
        for (; next < config.count && records.length < allowed; next += step) {
          records.push(make(next));
        }
        return { records, position: next };
      },
    };
  },
});

/**
 * A source of `count` synthetic e-commerce events ({@linkcode EcommerceEvent}), keyed by SKU,
 * deterministic for a given `seed`. Pull-driven: it makes at most `max` events per pull and none
 * while the pipeline does not pull; with `ratePerSec` it sleeps to keep that rate.
 *
 * @param config `count` and `seed` (required), `ratePerSec`, `startTs`, `skus`, `users`,
 *   `tsStepMs`, `mix`; see {@linkcode GeneratorOptions} for defaults.
 * @param options Stage options (name, parallelism, ...).
 * @returns A source reference for a pipeline.
 * @throws {ConfigError} When the config is invalid, naming the zod path.
 *
 * @example Revenue per SKU of 300 events
 * ```ts
 * import { collect, generator, pipeline } from "@sluice/sluice";
 * import type { EcommerceEvent } from "@sluice/sluice";
 * import assert from "node:assert/strict";
 *
 * const out = collect<EcommerceEvent>();
 * await pipeline({ mode: "inline", signals: false })
 *   .from(generator({ count: 300, seed: 42, skus: 5 }))
 *   .to(out.sink)
 *   .run();
 * const events = await out.values();
 * assert.equal(events.length, 300);
 * assert.ok(events.every((e) => e.sku.startsWith("sku-") && e.qty >= 1));
 * await out.clear();
 * ```
 */
export function generator(
  config: GeneratorOptions,
  options?: StageOptions,
): StageRef<never, EcommerceEvent> {
  parseConfig(generatorSource, options?.name ?? generatorSource.name, config);
  const ref = {
    kind: "source",
    module: import.meta.url,
    export: "generatorSource",
    config,
  } as const;
  return options === undefined ? ref : { ...ref, options };
}
