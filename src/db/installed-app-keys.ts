import type { SqlRunner } from './driver-sql.js';

/** An installed app, as a catalogue change announces it. */
export interface InstalledAppKey {
  userId: string;
  appName: string;
}

/**
 * The installed apps of `sourceId` that its catalogue no longer offers: no entry under their
 * catalogue name (a clone's: its original's). By the source's index on AppState, one statement.
 */
export function installedAppsWithoutEntry(db: SqlRunner, sourceId: string): Promise<InstalledAppKey[]> {
  return db.$queryRaw`
    SELECT "userId", "appName" FROM "AppState" WHERE "sourceId" = ${sourceId} AND NOT EXISTS (
      SELECT 1 FROM "CatalogApp" WHERE "CatalogApp"."sourceId" = "AppState"."sourceId"
        AND "CatalogApp"."name" = COALESCE("AppState"."rawAppName", "AppState"."appName"))`;
}

/** Every installed app of `sourceId`. */
export function installedAppsOfSource(db: SqlRunner, sourceId: string): Promise<InstalledAppKey[]> {
  return db.$queryRaw`SELECT "userId", "appName" FROM "AppState" WHERE "sourceId" = ${sourceId}`;
}
