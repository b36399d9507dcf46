// Sluice test server: an in-memory MongoDB-wire server (de.bwaldvogel:mongo-java-server) with the
// oplog enabled, so change streams work. Started by scripts/services.sh as a single-file program:
//
//   java -cp 'jars/*' scripts/MongoServer.java [host] [port] [version]
//
// host defaults to 127.0.0.1, port to 27018, version (the server version it reports: 3.6, 4.0
// or 5.0) to 5.0 -- the Node driver 6.x refuses servers older than 4.0 (wire version 7).
// Data lives in memory only: a restart starts empty.

import de.bwaldvogel.mongo.ServerVersion;
import de.bwaldvogel.mongo.backend.memory.MemoryBackend;
import java.util.concurrent.CountDownLatch;

public class MongoServer {
  public static void main(String[] args) throws Exception {
    String host = args.length > 0 ? args[0] : "127.0.0.1";
    int port = args.length > 1 ? Integer.parseInt(args[1]) : 27018;
    String version = args.length > 2 ? args[2] : "5.0";

    MemoryBackend backend = new MemoryBackend();
    backend.version(ServerVersion.valueOf("MONGO_" + version.replace('.', '_')));
    de.bwaldvogel.mongo.MongoServer server = new de.bwaldvogel.mongo.MongoServer(backend);
    server.enableOplog();
    server.bind(host, port);

    CountDownLatch stopped = new CountDownLatch(1);
    Runtime.getRuntime().addShutdownHook(new Thread(() -> {
      server.shutdownNow();
      stopped.countDown();
    }));
    // services.sh waits for this exact line before it reports the server ready.
    System.out.println("sluice-mongo ready on " + host + ":" + port + " (version " + version
        + ", oplog enabled)");
    System.out.flush();
    stopped.await();
  }
}
