import { isAlias, isCollection, isMap, isScalar } from 'yaml';

/**
 * One linear pass over a parsed manifest, before it becomes plain data: its size in nodes, its
 * aliases and its duplicate keys. yaml's own duplicate check (`uniqueKeys: true`) compares each key
 * with every earlier key of its map: 23,000 `kN: 1` lines (a 60 KB upload) held the event loop
 * 14 s. Here a map's keys go into a Set, compared as yaml compares them (a scalar key by its
 * value, `===`; any other key only to itself, so never a duplicate).
 */

/** Most nodes (keys, values, items) in one manifest; real ones have a few hundred. */
export const MAX_YAML_NODES = 10_000;
/** Most aliases (`*name`): what `toJS({ maxAliasCount: 50 })` lets through at best. */
const MAX_YAML_ALIASES = 50;

export type NodesProblem = { kind: 'duplicate'; offset: number } | { kind: 'nodes' } | { kind: 'aliases' };

/** The first problem of a document's contents, or null. Stops at the node bound. */
export function yamlNodesProblem(contents: unknown): NodesProblem | null {
  const stack: unknown[] = [contents];
  let nodes = 0;
  let aliases = 0;
  // The first duplicate in the text, as yaml reports it (the walk is depth-first, not in order).
  let duplicate: number | undefined;
  while (stack.length > 0) {
    const node = stack.pop();
    if (node === null || node === undefined) continue;
    nodes += 1;
    if (nodes > MAX_YAML_NODES) return { kind: 'nodes' };
    if (isAlias(node)) {
      aliases += 1;
      // Each alias costs toJS a walk of its anchor's node: refused before it runs.
      if (aliases > MAX_YAML_ALIASES) return { kind: 'aliases' };
    } else if (isMap(node)) {
      const keys = new Set<unknown>();
      for (const { key, value } of node.items) {
        // NaN (`.nan`) is never `===` itself, so yaml never finds it twice; a Set would.
        if (isScalar(key) && !Number.isNaN(key.value)) {
          const offset = key.range?.[0] ?? 0;
          if (keys.has(key.value)) duplicate = Math.min(duplicate ?? offset, offset);
          keys.add(key.value);
        }
        stack.push(key, value);
      }
    } else if (isCollection(node)) {
      stack.push(...node.items);
    }
  }
  return duplicate === undefined ? null : { kind: 'duplicate', offset: duplicate };
}

/** `at line L, column C` of an offset in `text`, as yaml's errors say it. */
export function linePosition(text: string, offset: number): string {
  let line = 1;
  let start = 0;
  for (let at = text.indexOf('\n'); at !== -1 && at < offset; at = text.indexOf('\n', at + 1)) {
    line += 1;
    start = at + 1;
  }
  return `at line ${line}, column ${offset - start + 1}`;
}
