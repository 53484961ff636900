import { setImmediate as nextTurn } from 'node:timers/promises';
import { ClientGoneError } from '../domain/operation-client.js';
import type { PageWindow } from './pagination.js';

/*
 * Pages of a list whose filter is partly derived (an app's stage and health, a payment's status:
 * computed from the row, and the app's active task, by one rule in domain/), for paginateWindow,
 * without the table in memory. A page of `apps(filter: {stage: [FAILED]})` read every AppState row
 * and its active task first: at 100,000 apps 4–11 s a request, 730 MB → 2.2 GB of RSS with four at
 * once, and one request ran a 512 MB heap out of memory.
 */

/** Rows read per statement when the derived rule is applied a batch at a time. */
export const DERIVED_FILTER_BATCH = 500;

/**
 * Rows per statement when counting: no page to stop at, so fewer, larger statements (a 100,000-app
 * count took 3.5–4.8 s in batches of 500, 1.55–1.67 s in these; its memory stays a batch).
 */
export const COUNT_BATCH = 2_000;

/**
 * Reads the first rows of a window in window order: at least `window.take` of them unless the
 * window holds fewer (db/list-sql.ts pageRows reads one more, which does no harm here).
 */
export type WindowReader<T> = (window: PageWindow) => Promise<T[]>;

/** The rows of a batch the derived rule keeps, in the order given. */
export type DerivedRule<T> = (rows: T[]) => Promise<T[]> | T[];

/**
 * Whether the client of the request reading went away (domain/operation-client.ts), asked before
 * each batch: a scan of 100,000 rows for a client that left went on to its end, its statements
 * taking the pool's connections from everyone else's requests. Without one, a scan reads to its end.
 */
export type ClientGone = () => boolean;

const stays: ClientGone = () => false;

/**
 * A finder for paginateWindow: reads the window a batch at a time (keyset on the id), keeps what
 * `keep` keeps, and stops once it has `take + 1` (a page and whether another follows). Memory: a
 * batch. Time: the rows up to the page's last match, so a rare match still costs a scan of the
 * rows the SQL conditions leave, a batch at a time.
 */
export function batchedFinder<T extends { id: number }>(
  read: WindowReader<T>,
  keep: DerivedRule<T>,
  gone = stays,
  batch = DERIVED_FILTER_BATCH,
): (window: PageWindow) => Promise<T[]> {
  return async (window) => {
    const kept: T[] = [];
    for await (const rows of batches(read, window, batch, gone)) {
      kept.push(...(await keep(rows)));
      if (kept.length > window.take) break;
    }
    return kept.slice(0, window.take + 1);
  };
}

/** How many rows the SQL conditions and the derived rule leave, counted a batch at a time. */
export async function batchedCount<T extends { id: number }>(
  read: WindowReader<T>,
  keep: DerivedRule<T>,
  gone = stays,
  batch = COUNT_BATCH,
): Promise<number> {
  let count = 0;
  for await (const rows of batches(read, { fromNewest: false, take: batch }, batch, gone)) {
    count += (await keep(rows)).length;
  }
  return count;
}

/**
 * The window's rows, `batch` at a time, each batch past the last one's final id. Throws
 * ClientGoneError instead of reading a batch once `gone` says the client left.
 */
async function* batches<T extends { id: number }>(
  read: WindowReader<T>,
  window: PageWindow,
  batch: number,
  gone: ClientGone,
): AsyncGenerator<T[]> {
  let bounds = window;
  for (;;) {
    if (gone()) throw new ClientGoneError();
    const rows = (await read({ ...bounds, take: batch })).slice(0, batch);
    if (rows.length > 0) yield rows;
    if (rows.length < batch) return;
    const last = (rows[rows.length - 1] as T).id;
    bounds = bounds.fromNewest ? { ...bounds, idBelow: last } : { ...bounds, idAbove: last };
    // SQLite's statements run synchronously: a turn of the event loop between batches, so a long
    // scan does not hold every other request up until its end.
    await nextTurn();
  }
}
