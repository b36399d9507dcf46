// Checks shared by the wire-format tests: a batch sent the way a channel sends it, and a deep
// equality strict enough to tell a packed batch from a structured-cloned one.
import assert from "node:assert/strict";
import { Packer, unpack } from "../../actors/_wire.ts";

/** Sends `batch` the way a channel does: packed, structured-cloned, unpacked. */
export function cross(batch: unknown[], packer = new Packer()): unknown[] {
  return unpack(structuredClone(packer.pack(batch)));
}

/** Asserts deep equality including prototypes, -0, NaN and the order of keys. */
export function assertSame(actual: unknown, expected: unknown, path = "$"): void {
  if (typeof expected !== "object" || expected === null) {
    assert.ok(Object.is(actual, expected), `${path}: ${String(actual)} is not ${String(expected)}`);
    return;
  }
  assert.equal(typeof actual, "object", path);
  assert.notEqual(actual, null, path);
  assert.equal(
    Object.getPrototypeOf(actual),
    Object.getPrototypeOf(expected),
    `${path}: prototype`,
  );
  if (expected instanceof Date) {
    assert.ok(Object.is((actual as Date).getTime(), expected.getTime()), path);
    return;
  }
  if (expected instanceof Map || expected instanceof Set) {
    assertSame([...(actual as Map<unknown, unknown>)], [...expected], `${path}[...]`);
    return;
  }
  if (ArrayBuffer.isView(expected)) {
    assert.deepStrictEqual(actual, expected, path);
    return;
  }
  const keys = Reflect.ownKeys(expected);
  assert.deepEqual(Reflect.ownKeys(actual as object), keys, `${path}: keys`);
  for (const k of keys) {
    assertSame(
      (actual as Record<PropertyKey, unknown>)[k],
      (expected as Record<PropertyKey, unknown>)[k],
      `${path}.${String(k)}`,
    );
  }
}
