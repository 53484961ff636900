-- CreateIndex
CREATE INDEX "OutboxMessage_status_kind_createdAt_idx" ON "OutboxMessage"("status", "kind", "createdAt");

