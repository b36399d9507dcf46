/**
 * `rateLimit`: passes at most `perSecond` records per second (token bucket), holding the excess;
 * records are never dropped.
 *
 * @module
 */
import { z } from "../actors/_deps.ts";
import type { StreamRecord } from "../actors/record.ts";
import { defineProcessor, type ProcessorDefinition, type StageContext } from "../actors/stage.ts";
import type { StageOptions, StageRef } from "../actors/stage_ref.ts";
import { processorRef } from "./_config.ts";

/** Options of {@linkcode rateLimit}. */
export interface RateLimitOptions {
  /** Sustained rate, records per second (may be fractional, e.g. `0.5`). */
  perSecond: number;
  /**
   * Tokens the bucket holds: how many records may pass at once after a quiet spell. Default
   * `max(1, ceil(perSecond / 10))`, a tick's worth at the default `tickMs` of 100.
   */
  burst?: number;
  /** Records held waiting for tokens before `process` waits too (backpressure). Default 10 000. */
  maxHeld?: number;
}

const rateLimitConfig: z.ZodType<RateLimitOptions> = z.object({
  perSecond: z.number().positive().finite(),
  burst: z.number().int().safe().min(1).optional(),
  maxHeld: z.number().int().safe().min(0).optional(),
}).strict();

interface RateState {
  tokens: number;
  last: number | null;
  held: StreamRecord<unknown>[];
}

/**
 * The `rateLimit` processor definition (config: {@linkcode RateLimitOptions}). Stateful: the bucket
 * and the held records are per instance and travel through `snapshot`/`restore`. Prefer the
 * {@linkcode rateLimit} builder.
 *
 * @example
 * ```ts
 * import { rateLimitStage } from "@sluice/sluice";
 * import assert from "node:assert/strict";
 *
 * assert.equal(rateLimitStage.stateful, true);
 * ```
 */
export const rateLimitStage: ProcessorDefinition<unknown, unknown, RateLimitOptions> =
  defineProcessor({
    name: "rateLimit",
    config: rateLimitConfig,
    stateful: true,
    open(config) {
      const rate = config.perSecond / 1000; // tokens per ms
      const burst = config.burst ?? Math.max(1, Math.ceil(config.perSecond / 10));
      const maxHeld = config.maxHeld ?? 10_000;
      let s: RateState = { tokens: burst, last: null, held: [] };
      const wakers = new Set<() => void>();

      const refill = (now: number): void => {
        if (s.last !== null && now > s.last) {
          s.tokens = Math.min(burst, s.tokens + (now - s.last) * rate);
        }
        if (s.last === null || now > s.last) s.last = now;
      };
      const release = (ctx: StageContext<unknown>): void => {
        while (s.held.length > 0 && s.tokens >= 1) {
          s.tokens -= 1;
          ctx.emit(s.held.shift()!);
        }
      };
      // Resolves when the next token is due by the real clock, on the next tick, or on abort.
      const nextToken = (ctx: StageContext<unknown>): Promise<void> =>
        new Promise((resolve) => {
          const ms = Math.max(1, Math.ceil((1 - s.tokens) / rate));
          const done = () => {
            clearTimeout(timer);
            ctx.signal.removeEventListener("abort", done);
            wakers.delete(done);
            resolve();
          };
          const timer = setTimeout(done, ms);
          ctx.signal.addEventListener("abort", done);
          wakers.add(done);
        });
      // Waits (backpressure) until at most `limit` records are held.
      const drainTo = async (limit: number, ctx: StageContext<unknown>): Promise<void> => {
        while (s.held.length > limit && !ctx.signal.aborted) {
          await nextToken(ctx);
          refill(ctx.now());
          release(ctx);
        }
      };

      return {
        async process(record, ctx) {
          refill(ctx.now());
          if (s.held.length === 0 && s.tokens >= 1) {
            s.tokens -= 1;
            return record;
          }
          s.held.push(record);
          await drainTo(maxHeld, ctx);
        },
        onTick(now, ctx) {
          refill(now);
          release(ctx);
          for (const wake of [...wakers]) wake();
        },
        async flush(ctx) {
          refill(ctx.now());
          release(ctx);
          await drainTo(0, ctx);
        },
        snapshot(): RateState {
          return { tokens: s.tokens, last: s.last, held: [...s.held] };
        },
        restore(state) {
          s = structuredClone(state as RateState);
        },
        close() {
          for (const wake of [...wakers]) wake();
        },
      };
    },
  });

/**
 * Limits throughput to `perSecond` records per second per instance with a token bucket read from
 * `ctx.now()`. Records beyond the rate are held, in order, and released on ticks as tokens refill;
 * once `maxHeld` are held, `process` waits for tokens, so backpressure slows the stages upstream.
 * Nothing is dropped; end of input waits until every held record has passed at the rate. With
 * `parallelism` N the total rate is N × `perSecond`.
 *
 * @param options Rate, burst and hold bound; see {@linkcode RateLimitOptions}.
 * @param stageOptions Stage options; `tickMs` sets how often held records are released.
 * @returns A stage reference for a pipeline.
 * @throws {ConfigError} When the options are invalid (the message names the path).
 *
 * @example At most 50 API calls per second
 * ```ts
 * import { rateLimit } from "@sluice/sluice";
 * import assert from "node:assert/strict";
 *
 * const ref = rateLimit({ perSecond: 50 });
 * assert.equal(ref.export, "rateLimitStage");
 * assert.throws(() => rateLimit({ perSecond: 0 }), /config\.perSecond: Number must be greater than/);
 * ```
 */
export function rateLimit<I = unknown>(
  options: RateLimitOptions,
  stageOptions?: StageOptions,
): StageRef<I, I> {
  return processorRef(rateLimitStage, import.meta.url, "rateLimitStage", options, stageOptions);
}
