-- "Restore purchase" with no signature held has the wallet sign; the signature answering that sign
-- request goes to the developer (polling) rather than to a payment request, unlike the one a Buy asks
-- for. This column says whose the latest sign request is (src/services/purchase-service.ts).

-- AlterTable
ALTER TABLE "Payment" ADD COLUMN     "signingForRestore" BOOLEAN NOT NULL DEFAULT false;

