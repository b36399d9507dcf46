/**
 * The stdio connector: `stdinSource` (lines or NDJSON) and `stdoutSink`.
 *
 * @module
 */
export { stdinSource, type StdinSourceOptions, stdinSourceStage } from "./stdin_source.ts";
export { stdoutSink, type StdoutSinkOptions, stdoutSinkStage } from "./stdout_sink.ts";
