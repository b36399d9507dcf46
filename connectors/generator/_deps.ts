// Pinned third-party specifiers of the generator connector.
export { z } from "npm:zod@3.25.76";
