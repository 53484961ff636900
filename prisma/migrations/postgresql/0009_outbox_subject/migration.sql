-- Messages written before this migration have no subject: a webhook's first change of such a
-- subject afterwards may announce its state again, once (the dispatcher finds no earlier message).
-- AlterTable
ALTER TABLE "OutboxMessage" ADD COLUMN     "subject" TEXT;

-- CreateIndex
CREATE INDEX "OutboxMessage_webhookId_subject_id_idx" ON "OutboxMessage"("webhookId", "subject", "id");
