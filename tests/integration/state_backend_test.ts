// The state backend suite on Redis (a key prefix of its own) and MongoDB (a database of its own):
// stateful windowed aggregations rescaled, crashed, and killed in one process then resumed in
// another, with their checkpoints on a real server.
import { loadIoredis } from "../../stores/redis/_deps.ts";
import { loadMongodb } from "../../stores/mongo/_deps.ts";
import { services, uniqueName } from "./_services.ts";
import { stateBackendSuite } from "./_state_backend_suite.ts";

stateBackendSuite("RedisStore", () => {
  const url = services().redisUrl;
  const keyPrefix = `${uniqueName("sluice-state")}:`;
  const withClient = async <T>(fn: (redis: import("npm:ioredis@5.11.1").Redis) => Promise<T>) => {
    const { Redis } = await loadIoredis();
    const redis = new Redis(url, { maxRetriesPerRequest: 2, connectTimeout: 5_000 });
    try {
      return await fn(redis);
    } finally {
      await redis.quit();
    }
  };
  const ids = (redis: import("npm:ioredis@5.11.1").Redis) => redis.keys(`${keyPrefix}*`);
  return Promise.resolve({
    descriptor: { backend: "redis", url, keyPrefix },
    rawKeys: () =>
      withClient(async (redis) => (await ids(redis)).map((id) => id.slice(keyPrefix.length))),
    cleanup: () =>
      withClient(async (redis) => {
        const found = await ids(redis);
        if (found.length > 0) await redis.del(...found);
      }),
  });
});

stateBackendSuite("MongoStore", () => {
  const url = services().mongoUrl;
  const db = uniqueName("sluice_state").replaceAll("-", "_");
  const withClient = async <T>(
    fn: (client: import("npm:mongodb@6.22.0").MongoClient) => Promise<T>,
  ) => {
    const { MongoClient } = await loadMongodb();
    const client = new MongoClient(url, { serverSelectionTimeoutMS: 5_000 });
    try {
      await client.connect();
      return await fn(client);
    } finally {
      await client.close();
    }
  };
  return Promise.resolve({
    descriptor: { backend: "mongo", url, db },
    rawKeys: () =>
      withClient(async (client) => {
        const docs = await client.db(db).collection<{ _id: string }>("store")
          .find({}, { projection: { _id: 1 } }).toArray();
        return docs.map((d) => d._id);
      }),
    cleanup: () => withClient(async (client) => void await client.db(db).dropDatabase()),
  });
});
