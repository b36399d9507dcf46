// Schemas for the validate() runtime tests: the stage imports this module by URL in its worker.
import { z } from "../../../actors/_deps.ts";

/** An order: `currency` defaults to EUR. */
export const OrderSchema = z.object({
  id: z.string().min(1),
  total: z.number().nonnegative(),
  currency: z.string().default("EUR"),
});
