-- DropIndex
DROP INDEX "OutboxMessage_status_nextAttemptAt_idx";

-- CreateTable
CREATE TABLE "JobCursor" (
    "name" TEXT NOT NULL PRIMARY KEY,
    "position" DATETIME NOT NULL,
    "afterId" INTEGER,
    "updatedAt" DATETIME NOT NULL
);

-- CreateIndex
CREATE INDEX "Task_completedAt_idx" ON "Task"("completedAt");

-- CreateIndex
CREATE INDEX "Payment_updatedAt_idx" ON "Payment"("updatedAt");

-- CreateIndex
CREATE INDEX "OutboxMessage_status_kind_nextAttemptAt_idx" ON "OutboxMessage"("status", "kind", "nextAttemptAt");

