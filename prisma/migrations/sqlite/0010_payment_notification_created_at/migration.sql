-- CreateIndex
CREATE INDEX "PaymentNotification_createdAt_idx" ON "PaymentNotification"("createdAt");

