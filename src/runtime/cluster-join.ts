import type { Logger } from '../platform/logger.js';
import type { RuntimeApplier } from './runtime-applier.js';
import { type RuntimeChange, type RuntimeEntries, type RuntimeLog, runtimeEventOf } from './runtime-change.js';
import type { StateStore } from './state-store.js';

/**
 * How long after an instance's initial load ended a change announced (on any instance) may still
 * be in the state it loaded: the hosts' clocks may differ (NTP keeps them within milliseconds),
 * and an announcement follows its commit only once the committing process's event loop gets to
 * it (a stall under load delays it). Five seconds covers both with room to spare; a larger skew
 * between hosts lets a `since` resumed on a freshly started instance skip events again.
 */
export const LOAD_OVERLAP_MS = 5_000;

/**
 * Whether the state an instance loaded at start (ended at `loadedAt`, its clock) may already hold
 * what `change` brings. The log position is taken before the load, and an entry is appended
 * after its commit (Redis slow, the origin busy): an entry after the position may carry a change
 * the load read. Applying it then emits fewer events here than on the instances that had not
 * seen it, with nothing to tell a client resuming across it. Only rows come from the database.
 * An entry of a version without `notedAt` (a rolling deploy) counts as announced on arrival: it
 * is caught in the first seconds after the load, when most such entries arrive, and costs no
 * RESYNC later.
 */
export function mayBeLoaded(change: RuntimeChange, loadedAt: number, now = Date.now()): boolean {
  if (change.kind !== 'rows') return false;
  return (change.notedAt ?? now) < loadedAt + LOAD_OVERLAP_MS;
}

/** What joinCluster works on; `applied` follows each entry (after the store has it). */
export interface ClusterJoin {
  log: RuntimeLog;
  entries: RuntimeEntries;
  /** RUNTIME_EVENT_BUFFER: the most events taken over from the cluster at start. */
  eventBuffer: number;
  store: StateStore;
  applier: RuntimeApplier;
  logger: Logger;
  /** When the initial load ended (epoch ms). */
  loadedAt: number;
  applied(change: RuntimeChange, own: boolean, gone: string[]): void;
}

/**
 * Cluster mode, once the state is loaded: numbers events from the log's position on, takes over
 * the cluster's events up to there (for clients resuming from before this instance started),
 * records the events of its own changes from now on for later instances (an event of a change
 * whose instance died before applying it is not recorded: a later instance answers RESYNC to a
 * `since` from before it), then applies the log's changes. An entry the loaded state may hold
 * already (mayBeLoaded) may have caused events elsewhere that it did not cause here: the store
 * forgets up to its end, so that a `since` before it gets RESYNC rather than a silent gap (and
 * the RESYNC recorded for an own entry keeps a later instance from replaying across it).
 */
export async function joinCluster(join: ClusterJoin): Promise<void> {
  const { log, entries, store, applier } = join;
  store.startAt(entries.position);
  try {
    store.replay((await log.eventsUpTo(entries.position, join.eventBuffer)).map(runtimeEventOf));
  } catch (error) {
    join.logger.warn({ err: error }, 'could not read the cluster’s recent runtime events; resuming starts here');
  }
  // Each event is recorded by the instance whose change caused it (every instance emits it).
  let own = false;
  store.onEvent((event) => {
    if (own) log.recordEvent(event);
  });
  entries.attach((change, first, last, isOwn) => {
    own = isOwn;
    let gone: string[] = [];
    try {
      store.applyAt(first, last, () => {
        gone = applier.apply(change);
      });
      if (mayBeLoaded(change, join.loadedAt)) store.forgetUpTo(last);
    } finally {
      own = false;
    }
    join.applied(change, isOwn, gone);
  });
}
