// One classification per driver of which errors are connection faults (retried) and which are the
// command's or the data's (dead-lettered or failed): the stores and the connectors share it.
import assert from "node:assert/strict";
import { isTransient as mongoTransient } from "../../stores/mongo/_transient.ts";
import { isTransient as redisTransient } from "../../stores/redis/_transient.ts";
import { isTransient as mongoConnector } from "../../connectors/mongo/_client.ts";
import { isTransient as redisConnector } from "../../connectors/redis/_client.ts";
import { isTransient as mongoStore } from "../../stores/mongo/_client.ts";
import { isTransient as redisStore } from "../../stores/redis/_client.ts";
import { loadMongodb } from "../../stores/mongo/_deps.ts";

Deno.test("The MongoDB store and connectors classify driver errors the same way", () => {
  assert.equal(mongoConnector, mongoTransient);
  assert.equal(mongoStore, mongoTransient);
  assert.equal(redisConnector, redisTransient);
  assert.equal(redisStore, redisTransient);
});

Deno.test("MongoDB: network, selection and pool errors, retryable labels and server codes are transient", async () => {
  const { MongoNetworkError, MongoServerSelectionError, MongoError, MongoBulkWriteError } =
    await loadMongodb();
  assert.ok(mongoTransient(new MongoNetworkError("connection 3 to 127.0.0.1:27018 closed")));
  assert.ok(mongoTransient(
    new MongoServerSelectionError(
      "Server selection timed out",
      {} as ConstructorParameters<typeof MongoServerSelectionError>[1],
    ),
  ));
  for (
    const name of ["MongoNetworkTimeoutError", "MongoPoolClearedError", "MongoTopologyClosedError"]
  ) {
    assert.ok(mongoTransient(Object.assign(new Error("x"), { name })), name);
  }
  const labelled = new MongoError("not primary");
  labelled.addErrorLabel("RetryableWriteError");
  assert.ok(mongoTransient(labelled));
  // Server codes: primary stepped down, write concern failed, max time expired (both lists).
  for (const code of [189, 64, 50, 11600, 91]) {
    assert.ok(mongoTransient(Object.assign(new MongoError("server says"), { code })), `${code}`);
  }
  assert.ok(mongoTransient(new Error("connect ECONNREFUSED 127.0.0.1:27018")));
  assert.ok(mongoTransient(new Error("Topology is closed")));
  // The data's fault: a duplicate key, a validation failure, a bulk write with document errors.
  assert.ok(
    !mongoTransient(Object.assign(new MongoError("E11000 duplicate key"), { code: 11000 })),
  );
  assert.ok(
    !mongoTransient(Object.assign(new MongoError("Document failed validation"), { code: 121 })),
  );
  const bulk = new MongoBulkWriteError(
    { message: "connection closed while writing", code: 64, writeErrors: [] },
    {} as ConstructorParameters<typeof MongoBulkWriteError>[1],
  );
  bulk.writeErrors = [{ index: 0, code: 11000 }] as unknown as typeof bulk.writeErrors;
  assert.equal(bulk.name, "MongoBulkWriteError");
  assert.ok(!mongoTransient(bulk), "document errors decide, whatever the message or code");
  assert.ok(!mongoTransient(new TypeError("Cannot read properties of undefined")));
  assert.ok(!mongoTransient(null));
  assert.ok(!mongoTransient("a string"));
});

Deno.test("Redis: connection errors, socket codes and try-again replies are transient; command errors are not", () => {
  const reply = (message: string) => Object.assign(new Error(message), { name: "ReplyError" });
  for (
    const m of [
      "LOADING Redis is loading the dataset in memory",
      "BUSY script",
      "READONLY You can't write",
      "CLUSTERDOWN",
    ]
  ) {
    assert.ok(redisTransient(reply(m)), m);
  }
  assert.ok(
    !redisTransient(reply("WRONGTYPE Operation against a key holding the wrong kind of value")),
  );
  assert.ok(!redisTransient(reply("ERR syntax error")));
  // A reply error is judged by its reply alone, even when its text mentions a socket error.
  assert.ok(!redisTransient(reply("ERR ECONNRESET is not a command")));
  assert.ok(redisTransient(Object.assign(new Error("Reached the max retries per request limit"), {
    name: "MaxRetriesPerRequestError",
  })));
  assert.ok(redisTransient(new Error("Connection is closed.")));
  assert.ok(
    redisTransient(new Error("Stream isn't writeable and enableOfflineQueue options is false")),
  );
  for (const code of ["ECONNREFUSED", "ENOTFOUND", "EHOSTUNREACH", "EAI_AGAIN"]) {
    assert.ok(redisTransient(Object.assign(new Error("socket"), { code })), code);
  }
  assert.ok(redisTransient(new Error("Command failed after max retries")));
  assert.ok(!redisTransient(new TypeError("value is not a string")));
  assert.ok(!redisTransient(undefined));
});
