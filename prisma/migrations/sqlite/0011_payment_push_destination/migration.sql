-- RedefineTables
PRAGMA defer_foreign_keys=ON;
PRAGMA foreign_keys=OFF;
CREATE TABLE "new_OutboxMessage" (
    "id" INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT,
    "kind" TEXT NOT NULL,
    "idempotencyKey" TEXT NOT NULL,
    "url" TEXT,
    "destination" TEXT,
    "topic" TEXT NOT NULL,
    "body" TEXT NOT NULL,
    "notificationId" INTEGER,
    "webhookId" TEXT,
    "subject" TEXT,
    "status" TEXT NOT NULL DEFAULT 'PENDING',
    "attempts" INTEGER NOT NULL DEFAULT 0,
    "nextAttemptAt" DATETIME NOT NULL,
    "lockedBy" TEXT,
    "lockedUntil" DATETIME,
    "lastError" TEXT,
    "lastStatusCode" INTEGER,
    "deliveredAt" DATETIME,
    "createdAt" DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updatedAt" DATETIME NOT NULL
);
INSERT INTO "new_OutboxMessage" ("attempts", "body", "createdAt", "deliveredAt", "id", "idempotencyKey", "kind", "lastError", "lastStatusCode", "lockedBy", "lockedUntil", "nextAttemptAt", "notificationId", "status", "subject", "topic", "updatedAt", "url", "webhookId") SELECT "attempts", "body", "createdAt", "deliveredAt", "id", "idempotencyKey", "kind", "lastError", "lastStatusCode", "lockedBy", "lockedUntil", "nextAttemptAt", "notificationId", "status", "subject", "topic", "updatedAt", "url", "webhookId" FROM "OutboxMessage";
DROP TABLE "OutboxMessage";
ALTER TABLE "new_OutboxMessage" RENAME TO "OutboxMessage";
CREATE UNIQUE INDEX "OutboxMessage_idempotencyKey_key" ON "OutboxMessage"("idempotencyKey");
CREATE UNIQUE INDEX "OutboxMessage_notificationId_key" ON "OutboxMessage"("notificationId");
CREATE INDEX "OutboxMessage_status_kind_nextAttemptAt_idx" ON "OutboxMessage"("status", "kind", "nextAttemptAt");
CREATE INDEX "OutboxMessage_webhookId_id_idx" ON "OutboxMessage"("webhookId", "id");
CREATE INDEX "OutboxMessage_webhookId_subject_id_idx" ON "OutboxMessage"("webhookId", "subject", "id");
PRAGMA foreign_keys=ON;
PRAGMA defer_foreign_keys=OFF;


-- Written by hand: a payment push names its receiver, whose URL (with any token in it) is read from
-- the configuration at each attempt. The pushes already written lose their stored URL: the ones still
-- queued go where the configuration says now, and no token stays in the table.
UPDATE "OutboxMessage"
SET "destination" = CASE WHEN "topic" = 'payment_state_update' THEN 'frontend' ELSE 'wallet' END, "url" = NULL
WHERE "kind" = 'payment';
