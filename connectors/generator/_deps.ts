// Pinned third-party specifiers of the generator connector.
export { z } from "npm:zod@4.6.7";
