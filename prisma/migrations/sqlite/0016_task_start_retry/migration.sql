-- A task the app service refused to take (HTTP 429 or 503, or no connection made: nothing was
-- started) waits PENDING and is sent again later (src/engine/start-retry.ts): "notBefore" is when it
-- may be claimed again, "startAttempts" how often it was refused, "message" what its users are shown
-- meanwhile. The fair claim's index (0015) gets "notBefore" as its last key, so the claim skips the
-- waiting tasks from the index alone, as it numbers the pending ones (bench/fair-claim.ts).

-- AlterTable
ALTER TABLE "Task" ADD COLUMN "notBefore" DATETIME;
ALTER TABLE "Task" ADD COLUMN "startAttempts" INTEGER NOT NULL DEFAULT 0;
ALTER TABLE "Task" ADD COLUMN "message" TEXT;

-- DropIndex
DROP INDEX "Task_status_userId_id_idx";

-- CreateIndex
CREATE INDEX "Task_status_userId_id_notBefore_idx" ON "Task"("status", "userId", "id", "notBefore");
