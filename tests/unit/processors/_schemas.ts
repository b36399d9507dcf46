// Schemas for validate() tests: the stage imports this module by URL, as it would in a worker.
import { z } from "../../../actors/_deps.ts";

/** An order. */
export const OrderSchema = z.object({
  id: z.string().min(1),
  total: z.number().nonnegative(),
  currency: z.string().default("EUR"),
  items: z.array(z.object({ sku: z.string() })).default([]),
});

/** A schema with an async refinement. */
export const AsyncSchema = z.string().refine(async (s) => await Promise.resolve(s !== "bad"), {
  message: "Must not be bad",
});

/** Not a schema. */
export const notASchema = { parse: () => 1 };
