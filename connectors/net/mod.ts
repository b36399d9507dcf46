/**
 * Network connectors: TCP line sources (`tcpLinesSource` connects, `tcpLinesServer` listens)
 * and HTTP (`httpSource` on `Deno.serve`, `httpSink` posting NDJSON batches).
 *
 * @module
 */
export {
  tcpLinesSource,
  type TcpLinesSourceOptions,
  tcpLinesSourceStage,
} from "./tcp_lines_source.ts";
export {
  tcpLinesServer,
  type TcpLinesServerOptions,
  tcpLinesServerStage,
} from "./tcp_lines_server.ts";
export {
  type HttpAuth,
  httpSource,
  type HttpSourceOptions,
  httpSourceStage,
} from "./http_source.ts";
export { httpSink, type HttpSinkOptions, httpSinkStage } from "./http_sink.ts";
