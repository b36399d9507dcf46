// Pinned third-party specifiers of the file connector: csv-parse and csv-stringify (sync APIs).
export { parse as parseCsv } from "npm:csv-parse@7.0.3/sync";
export { stringify as stringifyCsv } from "npm:csv-stringify@6.9.0/sync";
