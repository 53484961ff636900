-- DropIndex
DROP INDEX "OutboxMessage_status_nextAttemptAt_idx";

-- CreateIndex
CREATE INDEX "OutboxMessage_status_kind_nextAttemptAt_idx" ON "OutboxMessage"("status", "kind", "nextAttemptAt");

