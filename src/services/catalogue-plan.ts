import { createHash } from 'node:crypto';
import { type MarketSourceClient, MarketSourceError, type SourceIndex } from '../adapters/market-source/port.js';
import { readCatalogueEntry } from '../domain/catalogue-entry.js';
import { loggedText } from '../platform/clip-text.js';
import { turnPacer } from '../platform/turn-pacer.js';
import { type StoredUpsert, storedUpsert } from './catalogue-writes.js';

/** Steps of the Syncer's plan (catalogue-sync.ts): reading the details of what changed, and the name rule. */

export type StoredReading = { ok: true; row: StoredUpsert } | { ok: false; reason: string };

/** What the index says of an app: its entry must carry the same name and version. */
export interface ListedApp {
  name: string;
  version: string;
  /** The summary's fingerprint, which the stored row keeps. */
  fingerprint: string;
}

/**
 * The entries of `wanted`, each read as its batch of details arrives (while the next ones are on
 * their way) and kept only as stored (storedUpsert): the parsed answer of a batch is garbage as
 * soon as it is read. By app id; an id the source did not send has no reading.
 *
 * What is kept waits for the sync's one write, so it is bounded as a whole (`maxBytes`, counted
 * in characters of the stored text): every answer and entry within its own bound, a source
 * serving 14,000 entries of 240 kB grew the process past its heap limit, and again at every
 * start. Over the bound the sync fails (too_large), the catalogue stays as it was.
 *
 * An entry is kept only under the summary it answers: one whose name or version is not its
 * summary's (details served by a cache behind the index) is refused, so that the old row and its
 * fingerprint stay and the next sync asks for it again.
 *
 * The entries are read with turns of the event loop between (turnPacer): answers arriving together
 * were read in one turn, 100 entries each, and at 5,000 apps such turns held every other request of
 * the process for 70–190 ms of CPU each (up to 0.9 s on the loaded 2-core test machine). `pace`:
 * the pacer, one of TURN_BUDGET_MS unless given. `signal` cuts the reading short (see MarketSourceClient).
 */
export async function readEntries(
  client: MarketSourceClient,
  wanted: readonly string[],
  listed: (id: string) => ListedApp,
  { maxBytes, signal }: { maxBytes: number; signal?: AbortSignal },
  pace = turnPacer(),
): Promise<Map<string, StoredReading>> {
  const readings = new Map<string, StoredReading>();
  let kept = 0;
  await client.detailsEach(
    wanted,
    async (answer) => {
      for (const [id, served] of answer.apps) {
        await pace();
        const reading = readCatalogueEntry(id, served);
        if (!reading.ok) {
          readings.set(id, reading);
          continue;
        }
        const summary = listed(id);
        const disagreement = disagreementOf(reading.row, summary);
        if (disagreement !== null) {
          readings.set(id, { ok: false, reason: `app ${id}: ${disagreement}` });
          continue;
        }
        const row = storedUpsert(reading.row, summary.fingerprint);
        kept += row.entry.length + row.searchText.length + (row.price?.length ?? 0) + row.versions.length;
        if (kept > maxBytes) {
          throw new MarketSourceError(
            'too_large',
            `details: the changed entries come to more than ${maxBytes} characters in one sync (SYNC_MAX_CATALOGUE_BYTES)`,
          );
        }
        readings.set(id, { ok: true, row });
      }
      for (const app of answer.skipped) readings.set(app.id, { ok: false, reason: `app ${app.id}: ${app.reason}` });
    },
    signal,
  );
  return readings;
}

/**
 * The apps of the index whose details a sync reads (new ones, and those whose summary's fingerprint
 * is not the stored one), and the fingerprints taken meanwhile: only a stored app's is needed now.
 * Fingerprinting every summary (stable JSON, SHA-256) is done with turns of the event loop between:
 * at 5,000 stored apps it took a turn of its own of 90–170 ms of CPU on the loaded test machine.
 */
export async function changedApps(
  apps: SourceIndex['apps'],
  stored: ReadonlyMap<string, string | null>,
  pace = turnPacer(),
): Promise<{ wanted: string[]; fingerprints: Map<string, string> }> {
  const fingerprints = new Map<string, string>();
  const wanted: string[] = [];
  for (const app of apps) {
    const known = stored.get(app.id);
    if (known !== undefined) {
      await pace();
      fingerprints.set(app.id, fingerprint(app.raw));
    }
    if (known === undefined || known !== fingerprints.get(app.id)) wanted.push(app.id);
  }
  return { wanted, fingerprints };
}

/** Why an entry cannot stand for its summary, or null. */
function disagreementOf(entry: { name: string; version: string }, summary: ListedApp): string | null {
  if (entry.name !== summary.name) return `the entry is named ${entry.name} while the index lists ${summary.name}`;
  if (entry.version === summary.version) return null;
  return `the entry has version ${entry.version} while the index lists ${summary.version} (the details lag the index)`;
}

/**
 * Names are unique per source (installApp names an app). The entries of a sync may not take a
 * name that another app keeps after it: an app left as it is, or one whose new entry was itself
 * refused (it keeps its old name). Refusing one may free nothing but may keep another name taken,
 * so this runs until nothing more is refused. Returns the refused app ids with their reasons.
 */
export function refuseNameClashes(
  stored: readonly { appId: string; name: string }[],
  candidates: ReadonlyMap<string, { name: string }>,
  removed: ReadonlySet<string>,
): Map<string, string> {
  const refused = new Map<string, string>();
  for (let changed = true; changed; ) {
    changed = false;
    const taken = new Map<string, string>();
    for (const row of stored) {
      const replaced = candidates.has(row.appId) && !refused.has(row.appId);
      if (!removed.has(row.appId) && !replaced) taken.set(row.name, row.appId);
    }
    for (const [id, row] of candidates) {
      if (refused.has(id)) continue;
      const holder = taken.get(row.name);
      if (holder !== undefined && holder !== id) {
        refused.set(id, `app ${id}: name ${row.name} is already used by app ${holder}`);
        changed = true;
      } else {
        taken.set(row.name, id);
      }
    }
  }
  return refused;
}

/**
 * The hash a read catalogue is kept under (what the next poll compares the hash call's answer
 * with), from the hash call's `polled`, the index's own `indexed` and the `stored` one, and a
 * note when the index lags. The hash call's answer when the index agrees with it, or moved with it
 * (a source whose published hash covers more than its index: its unchanged polls then cost one
 * request). When the hash call moved and the index did not (a cache in front of `info` still
 * serving the catalogue of before), the index's own: the content kept is that one, and the next
 * poll, finding the hash call elsewhere, reads the index again.
 */
export function keptHash(polled: string, indexed: string, stored: string | null): { hash: string; lag: string | null } {
  if (indexed === polled || indexed !== stored) return { hash: polled, lag: null };
  const lag = `the index (info) still has hash ${indexed} while the hash call answers ${polled}`;
  return { hash: indexed, lag: `${lag}: it is read again at the next sync` };
}

/** Most rejected entries one sync's warning lists, and the longest reason it keeps of each (the source's text). */
const MAX_LOGGED_REJECTIONS = 20;
const MAX_LOGGED_REASON = 300;

/**
 * The fields of the warning a sync that rejected entries logs: `sync.lastError` keeps only the
 * first reason, so this is where an operator finds the others. Bounded (at most 6 kB of reasons),
 * `unlisted` counting those left out.
 */
export function rejectionLog(rejected: readonly string[]) {
  return {
    rejectedCount: rejected.length,
    rejected: rejected.slice(0, MAX_LOGGED_REJECTIONS).map((reason) => loggedText(reason, MAX_LOGGED_REASON)),
    unlisted: Math.max(0, rejected.length - MAX_LOGGED_REJECTIONS),
  };
}

/** A stable digest of an app's summary: JSON with sorted keys, so key order never counts as a change. */
export function fingerprint(summary: unknown): string {
  return createHash('sha256').update(JSON.stringify(summary, sortedKeys)).digest('base64url').slice(0, 32);
}

function sortedKeys(_key: string, value: unknown): unknown {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return value;
  return Object.fromEntries(Object.entries(value).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
}
