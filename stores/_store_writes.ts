// The sink's merge and increment writes on any Store: the store's own atomic batch operation when
// it has one (`mergeMany`, `incrementMany`: every built-in store does), else a checked
// `updateMany` when the store offers one, else a plain read-then-write (not atomic against
// concurrent writers of the same keys).
import { isPlainObject } from "./_args.ts";
import type { Store, StoreSetOptions } from "./store.ts";

type Updatable = Store & {
  updateMany?<T>(
    keys: Iterable<string>,
    fn: (current: T | undefined, key: string) => T,
    options?: StoreSetOptions,
  ): Promise<unknown>;
};

/** Shallow-merges each object into the entry at its key. */
export async function mergeInto(
  store: Updatable,
  entries: Map<string, Record<string, unknown>>,
  options: StoreSetOptions,
): Promise<void> {
  if (entries.size === 0) return;
  if (store.mergeMany) return await store.mergeMany(entries, options);
  const merge = (old: unknown, key: string) => ({
    ...(isPlainObject(old) ? old : {}),
    ...entries.get(key),
  });
  if (store.updateMany) {
    await store.updateMany<unknown>(entries.keys(), merge, options);
    return;
  }
  const keys = [...entries.keys()];
  const olds = await store.getMany(keys);
  await store.setMany(keys.map((k, i) => [k, merge(olds[i], k)] as const), options);
}

/** Adds each amount to the number at its key. */
export async function addTo(
  store: Updatable,
  entries: Map<string, number>,
  options: StoreSetOptions,
): Promise<void> {
  if (entries.size === 0) return;
  if (store.incrementMany) return await store.incrementMany(entries, options);
  const add = (old: unknown, key: string) => {
    if (old !== undefined && typeof old !== "number") {
      throw new TypeError(`Cannot increment key "${key}": its value is not a number`);
    }
    return (old ?? 0) + entries.get(key)!;
  };
  if (store.updateMany) {
    await store.updateMany<unknown>(entries.keys(), add, options);
    return;
  }
  const keys = [...entries.keys()];
  const olds = await store.getMany(keys);
  await store.setMany(keys.map((k, i) => [k, add(olds[i], k)] as const), options);
}
