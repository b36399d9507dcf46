// Pinned third-party specifiers for the runtime. actors/ may depend on zod and web APIs only.
export { z } from "npm:zod@3.25.76";
export type { ZodError, ZodType } from "npm:zod@3.25.76";
