/** Removes and returns the first `limit` values of a set or map (the oldest marked). */
export function takeFirst<K, V>(stale: { entries(): Iterable<[K, V]>; delete(key: K): boolean }, limit: number): V[] {
  const taken: V[] = [];
  for (const [key, value] of stale.entries()) {
    if (taken.length === limit) break;
    taken.push(value);
    stale.delete(key); // deleting the entry being visited is safe while iterating
  }
  return taken;
}
