// Entry point of every stage worker. The message handler is registered before any await so no
// message from the supervisor is lost while modules load.
/// <reference lib="deno.worker" />
import type { ToTask } from "./_protocol.ts";
import { Task } from "./_task.ts";

const task = new Task({
  postMessage: (message, transfer) => self.postMessage(message, { transfer: transfer ?? [] }),
});
self.onmessage = (e: MessageEvent<ToTask>) => task.handle(e.data);
