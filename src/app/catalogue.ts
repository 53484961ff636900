import { fileURLToPath } from 'node:url';
import { createMarketSourceClient, isBundledUrl } from '../adapters/market-source/factory.js';
import type { MarketSourceClient } from '../adapters/market-source/port.js';
import type { Db } from '../db/client.js';
import type { ChangeFeed, EventBus } from '../events/change-feed.js';
import type { Config } from '../platform/config.js';
import type { Logger } from '../platform/logger.js';
import type { CatalogService } from '../services/catalog-service.js';
import { CatalogueChanges } from '../services/catalogue-changes.js';
import { CatalogueSyncer } from '../services/catalogue-sync.js';
import type { HistoryService } from '../services/history-service.js';

/**
 * The catalogue file `market.olares` reads without MARKET_SOURCE_URL: data shipped with the
 * project (the same place relative to src/app and dist/app).
 */
const BUNDLED_CATALOGUE_PATH = fileURLToPath(new URL('../../catalogue/bundled.json', import.meta.url));

interface CatalogueDeps {
  db: Db;
  logger: Logger;
  config: Config;
  bus: EventBus;
  feed: ChangeFeed;
  history: HistoryService;
  catalog: CatalogService;
}

/** The Syncer and the catalogue-change announcements it (and uploads) make. */
export function createCatalogue({ db, logger, config, bus, feed, history, catalog }: CatalogueDeps) {
  const changes = new CatalogueChanges(db, bus, feed, history, catalog);
  const bundledFile =
    config.catalogue.bundledFile === undefined ? BUNDLED_CATALOGUE_PATH : config.catalogue.bundledFile;
  const settings = {
    bundledCataloguePath: bundledFile ?? '',
    version: config.catalogue.sourceVersion,
    timeoutMs: config.catalogue.timeoutMs,
    maxResponseBytes: config.catalogue.maxResponseBytes,
  };
  // One client per source and URL, kept: it remembers what it learnt (an API version that is
  // missing, the parsed bundled file) from one sync to the next.
  const clients = new Map<string, MarketSourceClient>();
  const syncer = new CatalogueSyncer(
    db,
    logger,
    {
      intervalMs: config.catalogue.syncIntervalMs,
      backoffMaxMs: config.catalogue.backoffMaxMs,
      maxCatalogueBytes: config.catalogue.maxCatalogueBytes,
    },
    (source) => {
      if (bundledFile === null && isBundledUrl(source.baseUrl)) return null;
      const key = `${source.sourceId}\n${source.baseUrl ?? ''}`;
      let client = clients.get(key);
      if (!client) {
        // Each retry is logged: a source whose syncs succeed only after them is on a flaky link.
        client = createMarketSourceClient(source.baseUrl, settings, (retry) =>
          logger.info({ sourceId: source.sourceId, ...retry }, 'a market source dropped a connection; asked again'),
        );
        clients.set(key, client);
      }
      return client;
    },
    // After the sync committed: a history record or announcement that fails is logged, and the
    // sync still counts as the success it was.
    (change) =>
      changes.changed(change).catch((error: unknown) => {
        logger.error(
          { err: error, sourceId: change.sourceId },
          'a catalogue change could not be recorded or announced',
        );
      }),
  );
  return { syncer, changes };
}

/**
 * Start-up's first sync: the sources that read the bundled catalogue file. A file that cannot be
 * read (a BUNDLED_CATALOGUE_FILE that names none stopped the start already: config-values.ts) or
 * is not a catalogue leaves the catalogue as it was (the syncer logs it; the source's sync status
 * and the `syncer` component say why); the server still starts. With BUNDLED_CATALOGUE_FILE=off there is
 * nothing to read.
 */
export async function syncBundledCatalogue(syncer: CatalogueSyncer, config: Config, logger: Logger): Promise<void> {
  if (config.catalogue.bundledFile === null) return; // BUNDLED_CATALOGUE_FILE=off
  for (const outcome of await syncer.syncBundled()) {
    const { sourceId, error, read } = outcome;
    if (!error && read) {
      logger.info({ sourceId, apps: outcome.added.length + outcome.updated.length }, 'read the bundled catalogue');
    }
  }
}
