/**
 * Errors the runtime throws. They carry a string `code` because `instanceof` does not survive
 * structured clone across workers.
 *
 * @module
 */

/** Where a failure happened. */
export interface FailureSite {
  /** Stage name. */
  stage?: string;
  /** Instance index. */
  instance?: number;
  /** Partitions the instance owned, when keyed. */
  partitions?: number[];
}

/**
 * Base class of Sluice's domain errors.
 *
 * @example
 * ```ts
 * import { SluiceError } from "@sluice/sluice";
 * import assert from "node:assert/strict";
 *
 * const e = new SluiceError("E_TEST", "Cannot run: nothing is wired");
 * assert.equal(e.code, "E_TEST");
 * ```
 */
export class SluiceError extends Error {
  /** Stable, machine-readable code, e.g. `E_CONFIG`. */
  readonly code: string;
  /** Stage, instance and partitions involved, when known. */
  readonly site: FailureSite;

  /**
   * Creates an error with a code and where it happened.
   *
   * @param code Stable error code.
   * @param message "Cannot X: Y is Z".
   * @param options `cause` and the failure site.
   */
  constructor(code: string, message: string, options: ErrorOptions & { site?: FailureSite } = {}) {
    super(message, { cause: options.cause });
    this.name = "SluiceError";
    this.code = code;
    this.site = options.site ?? {};
  }
}

/**
 * A stage config failed validation. The message names the zod path.
 *
 * @example
 * ```ts
 * import { ConfigError } from "@sluice/sluice";
 * import assert from "node:assert/strict";
 *
 * const e = new ConfigError("Cannot configure stage \"sum\": config.field: Required");
 * assert.equal(e.code, "E_CONFIG");
 * ```
 */
export class ConfigError extends SluiceError {
  /**
   * Creates a config error.
   *
   * @param message The one-line description with the zod path.
   * @param options `cause` and the failure site.
   */
  constructor(message: string, options: ErrorOptions & { site?: FailureSite } = {}) {
    super("E_CONFIG", message, options);
    this.name = "ConfigError";
  }
}

/**
 * A supervisor gave up: restart intensity was exceeded and the failure reached the root.
 *
 * @example
 * ```ts
 * import { PipelineError } from "@sluice/sluice";
 * import assert from "node:assert/strict";
 *
 * const e = new PipelineError("Cannot run pipeline: stage \"sum\" instance 0 failed", {
 *   site: { stage: "sum", instance: 0 },
 * });
 * assert.equal(e.site.stage, "sum");
 * ```
 */
export class PipelineError extends SluiceError {
  /**
   * Creates a pipeline failure.
   *
   * @param message Names stage, instance, partitions and cause.
   * @param options `cause` and the failure site.
   */
  constructor(message: string, options: ErrorOptions & { site?: FailureSite } = {}) {
    super("E_PIPELINE", message, options);
    this.name = "PipelineError";
  }
}

/**
 * Thrown by a stage hook for a transient fault, such as a server that is down: the runtime retries
 * with backoff for as long as it takes (or until the stage is stopped), and backpressure holds the
 * pipeline meanwhile. It is honoured from a source's `pull`, a processor's `beforeBatch`,
 * `process`, `onWatermark`, `onTick` and `flush`, and a sink's `write` and `flush`. What the failed
 * attempt emitted is dropped: throw it before the hook changes state.
 *
 * @example
 * ```ts
 * import { RetriableError } from "@sluice/sluice";
 * import assert from "node:assert/strict";
 *
 * assert.equal(new RetriableError("Cannot write: broker is down").code, "E_RETRIABLE");
 * ```
 */
export class RetriableError extends SluiceError {
  /**
   * Creates a transient error.
   *
   * @param message What failed.
   * @param options `cause`.
   */
  constructor(message: string, options: ErrorOptions = {}) {
    super("E_RETRIABLE", message, options);
    this.name = "RetriableError";
  }
}

/** A plain, cloneable description of an error, sent across workers. */
export interface ErrorInfo {
  /** Error code (`E_...`), or the error's name when it had none. */
  code: string;
  /** The message. */
  message: string;
  /** The stack, when there was one. */
  stack?: string;
}

/** Turns anything thrown into an {@linkcode ErrorInfo}. */
export function toErrorInfo(error: unknown): ErrorInfo {
  if (error instanceof Error) {
    const code = (error as { code?: unknown }).code;
    return {
      code: typeof code === "string" ? code : error.name,
      message: error.message,
      stack: error.stack,
    };
  }
  if (typeof error === "object" && error !== null) {
    // A plain object thrown as an error: its own code and message, when it has them.
    const { code, message } = error as { code?: unknown; message?: unknown };
    return {
      code: typeof code === "string" ? code : "E_THROWN",
      message: typeof message === "string" ? message : describe(error),
    };
  }
  return { code: "E_THROWN", message: describe(error) };
}

/** Text for any thrown value: never throws (an object without prototype has no toString). */
function describe(value: unknown): string {
  try {
    const text = String(value);
    if (text !== "[object Object]") return text;
  } catch {
    // no toString: see below
  }
  try {
    return JSON.stringify(value) ?? Object.prototype.toString.call(value);
  } catch {
    return Object.prototype.toString.call(value);
  }
}
