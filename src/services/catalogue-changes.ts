import { SYSTEM_USER } from '../auth/user-id.js';
import type { Viewer } from '../auth/viewer.js';
import { installedAppsOf } from '../db/catalogue-sql.js';
import { RAW_PARAMETERS, readInChunks } from '../db/chunks.js';
import type { Db } from '../db/client.js';
import { driverSqlOf } from '../db/driver-sql.js';
import { type InstalledAppKey, installedAppsOfSource, installedAppsWithoutEntry } from '../db/installed-app-keys.js';
import { MAX_SOURCE_ID_LENGTH } from '../domain/app-key.js';
import { checkIdArgument } from '../domain/errors.js';
import type { CatalogueChanged, ChangeFeed, EventBus } from '../events/change-feed.js';
import { readEach } from '../events/subscription-reads.js';
import type { CatalogService } from './catalog-service.js';
import type { HistoryService } from './history-service.js';

/** Most app ids named in a history record's message; the record's data holds them all. */
const MAX_IDS_IN_MESSAGE = 10;

/**
 * Catalogue changes, from a sync or an upload: recorded in the history, announced (to every
 * instance in cluster mode) and offered as a subscription, of the sources the viewer is offered
 * (as `catalog` lists them: an inactive remote source's changes only to admins).
 */
export class CatalogueChanges {
  private readonly stopListening: () => void;

  constructor(
    private readonly db: Db,
    private readonly bus: EventBus,
    private readonly feed: ChangeFeed,
    private readonly history: HistoryService,
    private readonly catalog: CatalogService,
  ) {
    // Every instance, whichever instance changed the catalogue, drops its cached lookups of the
    // source. Its installed apps are announced by the instance that made the change (changed()).
    this.stopListening = bus.listen(
      'catalogue:changed',
      (change) => catalog.forgetSource(change.sourceId),
      (error) => process.emitWarning(`a catalogue change could not be taken: ${String(error)}`),
    );
  }

  /** Stops following the bus (at the server's stop). */
  async close(): Promise<void> {
    this.stopListening();
  }

  /**
   * After the change committed: one `system` history record, then the announcement. An upload's
   * names its admin (`by`, also in the message) and the version uploaded (`versions`, also in the
   * message): the record is the audit trail of who put which chart into every user's catalogue,
   * and the request log alone kept it only as long as the logs.
   */
  async changed(change: CatalogueChanged): Promise<void> {
    this.catalog.forgetSource(change.sourceId);
    const parts = (['added', 'updated', 'removed'] as const)
      .filter((kind) => change[kind].length > 0)
      .map((kind) => `${change[kind].length} ${kind} (${preview(change[kind], change.versions)})`);
    const by = change.by === undefined ? '' : ` by ${change.by}`;
    const records = await this.history.record([
      {
        type: 'system',
        message: `catalogue of ${change.sourceId} changed${by}: ${parts.join(', ')}`,
        app: null,
        // They concern no user: only admins (who see every user's records) read them, and no client
        // can be this user (auth/user-id.ts).
        userId: SYSTEM_USER,
        time: new Date(),
        extended: {
          sourceId: change.sourceId,
          added: change.added,
          updated: change.updated,
          removed: change.removed,
          ...(change.by === undefined ? {} : { by: change.by }),
          ...(change.versions === undefined ? {} : { versions: change.versions }),
        },
      },
    ]);
    this.feed.history(records);
    this.feed.catalogue(change);
    await this.announceInstalledApps(change).catch(warnUnannounced);
  }

  /**
   * After an admin added or removed a source (committed): its installed apps, whose
   * `sourceRemoved`, `catalogApp`, `latestVersion` and `upgradeAvailable` moved with it, are
   * announced as app changes. A selection moves none of them.
   */
  async sourceAddedOrRemoved(sourceId: string): Promise<void> {
    try {
      this.announce(sourceId, await installedAppsOfSource(driverSqlOf(this.db), sourceId));
    } catch (error) {
      warnUnannounced(error);
    }
  }

  /**
   * The installed apps of the changed entries, announced as app changes: their `latestVersion`
   * and `upgradeAvailable` moved, and `appUpdated` subscribers (the dashboard, a store page)
   * re-read them. Added entries count too (an app installed before its source listed it), and
   * removed ones (`latestVersion` and `catalogApp` are null now).
   *
   * Only the instance that made the change announces them: in cluster mode its collector reads
   * the apps back and the change log carries them to the others, whose buses announce them in
   * turn (create-services.ts, announceRows). Each instance announcing its own as well pushed each
   * app once per instance to every subscriber (two instances: twice, identical).
   */
  private async announceInstalledApps({ sourceId, added, updated, removed }: CatalogueChanged): Promise<void> {
    const sql = driverSqlOf(this.db);
    // A statement on the driver (not Prisma's query API): its parameter limit is the raw one.
    const installed = await readInChunks([...added, ...updated], RAW_PARAMETERS, (appIds) =>
      installedAppsOf(sql, sourceId, appIds),
    );
    // A removed entry's row is gone, and its name with it (the change names app ids): the installed
    // apps the catalogue no longer offers, those of entries removed by an earlier change included.
    if (removed.length > 0) installed.push(...(await installedAppsWithoutEntry(sql, sourceId)));
    this.announce(sourceId, installed);
  }

  /** Each installed app once, as an app change. */
  private announce(sourceId: string, installed: readonly InstalledAppKey[]): void {
    const seen = new Set<string>();
    for (const { userId, appName } of installed) {
      const key = `${userId}\n${appName}`;
      if (seen.has(key)) continue;
      seen.add(key);
      this.feed.app({ userId, sourceId, appName });
    }
  }

  /** Changes from now on, of one source or of all that the viewer is offered. */
  subscribe(viewer: Viewer, sourceId?: string | null): AsyncIterable<CatalogueChanged> {
    checkIdArgument('sourceId', sourceId, MAX_SOURCE_ID_LENGTH);
    const changes = this.bus.subscribe('catalogue:changed', (change) => !sourceId || change.sourceId === sourceId);
    if (viewer.isAdmin) return changes;
    return readEach(changes, async (change) => ((await this.catalog.offers(viewer, change.sourceId)) ? change : null));
  }
}

function warnUnannounced(error: unknown): void {
  process.emitWarning(`the apps of a catalogue change could not be announced: ${String(error)}`);
}

/** The first ids, each with its version where the change names one (an upload's: `zeta 1.2.0`). */
function preview(ids: readonly string[], versions: Readonly<Record<string, string>> = {}): string {
  const named = (id: string) => (Object.hasOwn(versions, id) ? `${id} ${versions[id]}` : id);
  const shown = ids.slice(0, MAX_IDS_IN_MESSAGE).map(named).join(', ');
  return ids.length > MAX_IDS_IN_MESSAGE ? `${shown}, …` : shown;
}
