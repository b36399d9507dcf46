/**
 * The generator connector: a deterministic, rate-controlled source of synthetic e-commerce
 * events.
 *
 * @module
 */
export {
  type EcommerceEvent,
  type EcommerceEventType,
  generator,
  type GeneratorConfig,
  type GeneratorOptions,
  generatorSource,
} from "./generator_source.ts";
