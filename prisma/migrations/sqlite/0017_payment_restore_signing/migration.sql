-- "Restore purchase" with no signature held has the wallet sign; the signature answering that sign
-- request goes to the developer (polling) rather than to a payment request, unlike the one a Buy asks
-- for. This column says whose the latest sign request is (src/services/purchase-service.ts).
-- Added in place (SQLite allows a NOT NULL column with a constant default), not by the table copy
-- Prisma generates, which took 3.0 s at 200,000 payments with writes waiting.

-- AlterTable
ALTER TABLE "Payment" ADD COLUMN "signingForRestore" BOOLEAN NOT NULL DEFAULT false;
