import { filter, pipe } from 'graphql-yoga';
import { ValidationError } from '../domain/errors.js';
import type { CatalogueChanged, ChangeFeed, EventBus } from '../events/change-feed.js';
import type { CatalogService } from './catalog-service.js';
import type { HistoryService } from './history-service.js';
import { MAX_SOURCE_ID_LENGTH } from './market-source-service.js';

/**
 * Who history records of catalogue changes belong to. They concern no user: only admins (who see
 * every user's records) read them.
 */
export const SYSTEM_HISTORY_USER = 'system';

/** Most app ids named in a history record's message; the record's data holds them all. */
const MAX_IDS_IN_MESSAGE = 10;

/**
 * Catalogue changes, from a sync or an upload: recorded in the history, announced (to every
 * instance in cluster mode) and offered as a subscription. Catalogues are public, so every
 * viewer may follow every source.
 */
export class CatalogueChanges {
  private readonly changes: AsyncIterator<CatalogueChanged>;

  constructor(
    private readonly bus: EventBus,
    private readonly feed: ChangeFeed,
    private readonly history: HistoryService,
    private readonly catalog: CatalogService,
  ) {
    // Every instance drops its cached lookups of a changed source, whichever instance changed it.
    const changes = bus.subscribe('catalogue:changed')[Symbol.asyncIterator]();
    this.changes = changes;
    void (async () => {
      for (let next = await changes.next(); !next.done; next = await changes.next()) {
        catalog.forgetSource(next.value.sourceId);
      }
    })();
  }

  /** Stops following the bus (at the server's stop). */
  async close(): Promise<void> {
    await this.changes.return?.();
  }

  /** After the change committed: one `system` history record, then the announcement. */
  async changed(change: CatalogueChanged): Promise<void> {
    this.catalog.forgetSource(change.sourceId);
    const parts = (['added', 'updated', 'removed'] as const)
      .filter((kind) => change[kind].length > 0)
      .map((kind) => `${change[kind].length} ${kind} (${preview(change[kind])})`);
    const records = await this.history.record([
      {
        type: 'system',
        message: `catalogue of ${change.sourceId} changed: ${parts.join(', ')}`,
        app: null,
        userId: SYSTEM_HISTORY_USER,
        time: new Date(),
        extended: { sourceId: change.sourceId, added: change.added, updated: change.updated, removed: change.removed },
      },
    ]);
    this.feed.history(records);
    this.feed.catalogue(change);
  }

  /** Changes from now on, of one source or of all. */
  subscribe(sourceId?: string | null): AsyncIterable<CatalogueChanged> {
    if (sourceId && sourceId.length > MAX_SOURCE_ID_LENGTH) {
      throw new ValidationError(`Argument "sourceId" must be at most ${MAX_SOURCE_ID_LENGTH} characters`, [
        { path: 'sourceId', message: `longer than ${MAX_SOURCE_ID_LENGTH} characters` },
      ]);
    }
    return pipe(
      this.bus.subscribe('catalogue:changed'),
      filter((change) => !sourceId || change.sourceId === sourceId),
    );
  }
}

function preview(ids: readonly string[]): string {
  const shown = ids.slice(0, MAX_IDS_IN_MESSAGE).join(', ');
  return ids.length > MAX_IDS_IN_MESSAGE ? `${shown}, …` : shown;
}
