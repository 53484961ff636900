-- AlterTable
ALTER TABLE "MarketSource" ADD COLUMN     "catalogHash" TEXT,
ADD COLUMN     "nextSyncAt" TIMESTAMP(3),
ADD COLUMN     "syncAttemptAt" TIMESTAMP(3),
ADD COLUMN     "syncDurationMs" INTEGER,
ADD COLUMN     "syncError" TEXT,
ADD COLUMN     "syncFailures" INTEGER NOT NULL DEFAULT 0,
ADD COLUMN     "syncedAt" TIMESTAMP(3);

-- AlterTable
ALTER TABLE "CatalogApp" ADD COLUMN     "summaryHash" TEXT;

