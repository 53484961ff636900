-- AlterTable
ALTER TABLE "CatalogApp" ADD COLUMN "summaryHash" TEXT;

-- RedefineTables
PRAGMA defer_foreign_keys=ON;
PRAGMA foreign_keys=OFF;
CREATE TABLE "new_MarketSource" (
    "id" INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT,
    "sourceId" TEXT NOT NULL,
    "title" TEXT NOT NULL,
    "type" TEXT NOT NULL,
    "baseUrl" TEXT,
    "description" TEXT,
    "priority" INTEGER NOT NULL DEFAULT 100,
    "nsfw" BOOLEAN NOT NULL DEFAULT false,
    "isActive" BOOLEAN NOT NULL DEFAULT true,
    "activeRemote" TEXT,
    "catalogHash" TEXT,
    "syncedAt" DATETIME,
    "syncAttemptAt" DATETIME,
    "syncError" TEXT,
    "syncFailures" INTEGER NOT NULL DEFAULT 0,
    "syncDurationMs" INTEGER,
    "nextSyncAt" DATETIME,
    "createdAt" DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updatedAt" DATETIME NOT NULL
);
INSERT INTO "new_MarketSource" ("activeRemote", "baseUrl", "createdAt", "description", "id", "isActive", "nsfw", "priority", "sourceId", "title", "type", "updatedAt") SELECT "activeRemote", "baseUrl", "createdAt", "description", "id", "isActive", "nsfw", "priority", "sourceId", "title", "type", "updatedAt" FROM "MarketSource";
DROP TABLE "MarketSource";
ALTER TABLE "new_MarketSource" RENAME TO "MarketSource";
CREATE UNIQUE INDEX "MarketSource_sourceId_key" ON "MarketSource"("sourceId");
CREATE UNIQUE INDEX "MarketSource_activeRemote_key" ON "MarketSource"("activeRemote");
PRAGMA foreign_keys=ON;
PRAGMA defer_foreign_keys=OFF;

