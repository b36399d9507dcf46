// The newline count behind line numbers of file chunks: four bytes at a time, at any alignment.
import assert from "node:assert/strict";
import { countLines } from "../../connectors/file/_file_cursor.ts";

function slow(bytes: Uint8Array): number {
  let n = 0;
  for (const b of bytes) if (b === 10) n++;
  return n;
}

Deno.test("countLines counts every newline byte at every offset and length", () => {
  // Bytes around 10 on purpose (9, 11, 0x8a, 0x0a0a…): a bit trick that mistakes a neighbour or
  // lets a carry cross bytes would miscount them.
  const tricky = [10, 9, 11, 0x8a, 0x0a, 0x7f, 0xff, 0, 10, 10, 10, 10, 0x80, 0x0b];
  const buf = new Uint8Array(4096);
  let seed = 7;
  for (let i = 0; i < buf.length; i++) {
    seed = (seed * 1103515245 + 12345) >>> 0;
    buf[i] = i % 3 === 0 ? tricky[seed % tricky.length]! : seed >>> 24;
  }
  for (let start = 0; start < 9; start++) {
    for (const len of [0, 1, 2, 3, 4, 5, 7, 8, 31, 64, 1000, buf.length - start]) {
      const part = buf.subarray(start, start + len);
      assert.equal(countLines(part), slow(part), `start ${start}, length ${len}`);
    }
  }
  assert.equal(countLines(new TextEncoder().encode("a\nb\n\nc")), 3);
  assert.equal(countLines(new Uint8Array(16).fill(10)), 16);
});
