import type { Db } from './client.js';
import { isUniqueViolation } from './hot-path-sql.js';

/**
 * The market sources every installation has, created on first start whatever DEMO_DATA says
 * (market-domain.md §6.1): the remote `market.olares`, active, and the local sources charts reach
 * without a sync (uploads, Studio, the CLI).
 */

export const REMOTE_SOURCE = 'market.olares';
export const UPLOAD_SOURCE = 'upload';

export const DEFAULT_SOURCES = [
  {
    sourceId: REMOTE_SOURCE,
    title: 'Olares Market',
    type: 'remote',
    baseUrl: null as string | null,
    description: 'The official remote catalogue',
    priority: 100,
    activeRemote: 'remote' as string | null,
  },
  {
    sourceId: UPLOAD_SOURCE,
    title: 'Uploaded charts',
    type: 'local',
    baseUrl: 'file://',
    description: 'Charts uploaded by users',
    priority: 50,
    activeRemote: null,
  },
  {
    sourceId: 'studio',
    title: 'Studio',
    type: 'local',
    baseUrl: 'file://',
    description: 'Apps built in Studio',
    priority: 50,
    activeRemote: null,
  },
  {
    sourceId: 'cli',
    title: 'CLI',
    type: 'local',
    baseUrl: 'file://',
    description: 'Apps installed from the command line',
    priority: 50,
    activeRemote: null,
  },
];

/**
 * Creates the default sources that do not exist yet and points `market.olares` at
 * `marketSourceUrl` (MARKET_SOURCE_URL; null = the bundled catalogue file). The URL is the
 * operator's setting, so it is applied at every start; when it changes, the stored catalogue
 * hash is forgotten so that the next sync reads the new source whole.
 */
export async function ensureDefaultSources(db: Db, marketSourceUrl: string | null): Promise<void> {
  const existing = await db.marketSource.findMany({ select: { sourceId: true, baseUrl: true, type: true } });
  for (const source of DEFAULT_SOURCES) {
    const row = existing.find((candidate) => candidate.sourceId === source.sourceId);
    if (row) {
      if (source.sourceId === REMOTE_SOURCE && row.baseUrl !== marketSourceUrl) {
        await db.marketSource.update({
          where: { sourceId: REMOTE_SOURCE },
          data: { baseUrl: marketSourceUrl, catalogHash: null, nextSyncAt: null },
        });
      }
      continue;
    }
    // `market.olares` only while there is no remote source at all: an admin who selected another
    // one and then removed it must not see it come back at the next start.
    if (source.sourceId === REMOTE_SOURCE && existing.some((candidate) => candidate.type === 'remote')) continue;
    const data = source.sourceId === REMOTE_SOURCE ? { ...source, baseUrl: marketSourceUrl } : source;
    try {
      await db.marketSource.create({ data });
    } catch (error) {
      // Instances starting together on one empty database: another one created it first.
      if (!isUniqueViolation(error)) throw error;
    }
  }
}
