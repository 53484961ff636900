import { isRecord } from '../../platform/json.js';
import type { AppEntrance } from './port.js';

/**
 * The entrances of an app as the app service sends them: `entranceStatuses[]` and
 * `sharedEntrances[]` of a state event, the entrances of its app list. Each wire entrance is
 * `{name, host, port, icon, title, authLevel, invisible, url, openMethod, windowPushState, skip,
 * state, statusTime, reason}` (Olares app-service `Entrance` + `EntranceStatus`); we keep what an
 * "open" needs.
 *
 * Both doors are reachable from the cluster, so everything is bounded, leniently: an entrance is
 * not worth refusing the state report it rides on. An item without a usable name is skipped, a
 * field over its bound is dropped (null), and past MAX_ENTRANCES the rest is ignored. U+0000 is
 * removed (PostgreSQL refuses it in JSON text).
 */

/** Most entrances kept per app (its own and its shared ones together). */
export const MAX_ENTRANCES = 32;

const BOUNDS = {
  name: 128,
  title: 256,
  url: 2048,
  state: 64,
  authLevel: 32,
  icon: 2048,
  openMethod: 32,
} as const;

function bounded(value: unknown, max: number): string | null {
  if (typeof value !== 'string') return null;
  const text = value.replaceAll('\u0000', '').trim();
  return text === '' || text.length > max ? null : text;
}

/** One wire entrance, or null when it names nothing. */
export function readEntrance(item: unknown, shared: boolean): AppEntrance | null {
  if (!isRecord(item)) return null;
  const name = bounded(item.name, BOUNDS.name);
  if (!name) return null;
  return {
    name,
    title: bounded(item.title, BOUNDS.title),
    url: bounded(item.url, BOUNDS.url),
    state: bounded(item.state, BOUNDS.state),
    authLevel: bounded(item.authLevel, BOUNDS.authLevel),
    icon: bounded(item.icon, BOUNDS.icon),
    openMethod: bounded(item.openMethod, BOUNDS.openMethod),
    invisible: item.invisible === true,
    shared,
  };
}

/**
 * The entrances a report carries: its own (`own`) and its shared ones, or undefined when it
 * carries neither list (the stored entrances are kept then). A report that carries one list only
 * replaces the whole set, the other list counting as empty. Repeated names keep their first entry.
 */
export function readEntrances(own: unknown, shared: unknown): AppEntrance[] | undefined {
  if (!Array.isArray(own) && !Array.isArray(shared)) return undefined;
  const entrances: AppEntrance[] = [];
  const seen = new Set<string>();
  const lists: [unknown, boolean][] = [
    [own, false],
    [shared, true],
  ];
  for (const [list, isShared] of lists) {
    if (!Array.isArray(list)) continue;
    for (const item of list) {
      if (entrances.length === MAX_ENTRANCES) return entrances;
      const entrance = readEntrance(item, isShared);
      const key = `${isShared}/${entrance?.name}`;
      if (!entrance || seen.has(key)) continue;
      seen.add(key);
      entrances.push(entrance);
    }
  }
  return entrances;
}

/**
 * A listed app's entrances, Application-resource style: the declared ones (`spec.entrances`,
 * with url, title, icon, auth level, open method) with the state of their `status.entranceStatuses`
 * entry of the same name; undefined when it lists neither.
 */
export function mergeEntranceStatuses(
  declared: unknown,
  statuses: unknown,
  shared: unknown,
): AppEntrance[] | undefined {
  if (!Array.isArray(declared) && !Array.isArray(statuses)) return readEntrances(undefined, shared);
  const stateByName = new Map<string, unknown>();
  for (const status of Array.isArray(statuses) ? statuses : []) {
    if (isRecord(status) && typeof status.name === 'string') stateByName.set(status.name, status.state);
  }
  // Only statuses when nothing is declared (older app services): they still name the entrances.
  const base = Array.isArray(declared) ? declared : (statuses as unknown[]);
  const merged = base.map((item) =>
    isRecord(item) && typeof item.name === 'string' && stateByName.has(item.name)
      ? { ...item, state: stateByName.get(item.name) }
      : item,
  );
  return readEntrances(merged, shared);
}
