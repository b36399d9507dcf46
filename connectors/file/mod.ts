/**
 * The file connector: `fileSource` (chunks cut at line boundaries, once or followed, glob, gzip),
 * the parallel decoders `decodeLines`, `decodeNdjson` and `decodeCsv`, the one-stage
 * `ndjsonFile`, and `fileSink` (NDJSON/lines/CSV, gzip, rotation with atomic renames).
 *
 * @module
 */
export {
  type FileChunk,
  type FileFormat,
  type FilePosition,
  fileSource,
  type FileSourceConfig,
  type FileSourceOptions,
  fileSourceStage,
} from "./file_source.ts";
export { decodeLines, type DecodeLinesOptions, decodeLinesStage } from "./decode_lines.ts";
export { decodeNdjson, type DecodeNdjsonOptions, decodeNdjsonStage } from "./decode_ndjson.ts";
export { type CsvOptions, type CsvRow, decodeCsv, decodeCsvStage } from "./decode_csv.ts";
export { ndjsonFile, type NdjsonFileOptions, ndjsonFileStage } from "./ndjson_file.ts";
export {
  type CsvWriteOptions,
  fileSink,
  type FileSinkOptions,
  fileSinkStage,
} from "./file_sink.ts";
