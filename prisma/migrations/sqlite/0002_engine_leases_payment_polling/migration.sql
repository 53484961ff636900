-- AlterTable
ALTER TABLE "Task" ADD COLUMN "dispatchedAt" DATETIME;
ALTER TABLE "Task" ADD COLUMN "heartbeatAt" DATETIME;
ALTER TABLE "Task" ADD COLUMN "workerId" TEXT;

-- CreateTable
CREATE TABLE "PaymentNotification" (
    "id" INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT,
    "paymentId" INTEGER NOT NULL,
    "userId" TEXT NOT NULL,
    "channel" TEXT NOT NULL,
    "topic" TEXT NOT NULL,
    "status" TEXT,
    "payload" JSONB NOT NULL,
    "createdAt" DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP
);

-- RedefineTables
PRAGMA defer_foreign_keys=ON;
PRAGMA foreign_keys=OFF;
CREATE TABLE "new_Payment" (
    "id" INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT,
    "userId" TEXT NOT NULL,
    "sourceId" TEXT NOT NULL,
    "appId" TEXT NOT NULL,
    "appName" TEXT NOT NULL,
    "productId" TEXT NOT NULL,
    "developerName" TEXT,
    "developer" JSONB,
    "paymentNeed" TEXT NOT NULL,
    "developerSync" TEXT NOT NULL,
    "larePassSync" TEXT NOT NULL,
    "signatureStatus" TEXT NOT NULL,
    "paymentStatus" TEXT NOT NULL,
    "jws" TEXT,
    "signBody" JSONB,
    "vc" TEXT,
    "txHash" TEXT,
    "frontendData" JSONB,
    "pollAttempts" INTEGER NOT NULL DEFAULT 0,
    "createdAt" DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updatedAt" DATETIME NOT NULL
);
INSERT INTO "new_Payment" ("appId", "appName", "createdAt", "developer", "developerName", "developerSync", "frontendData", "id", "jws", "larePassSync", "paymentNeed", "paymentStatus", "productId", "signBody", "signatureStatus", "sourceId", "txHash", "updatedAt", "userId", "vc") SELECT "appId", "appName", "createdAt", "developer", "developerName", "developerSync", "frontendData", "id", "jws", "larePassSync", "paymentNeed", "paymentStatus", "productId", "signBody", "signatureStatus", "sourceId", "txHash", "updatedAt", "userId", "vc" FROM "Payment";
DROP TABLE "Payment";
ALTER TABLE "new_Payment" RENAME TO "Payment";
CREATE INDEX "Payment_userId_sourceId_appId_idx" ON "Payment"("userId", "sourceId", "appId");
CREATE INDEX "Payment_developerSync_idx" ON "Payment"("developerSync");
CREATE UNIQUE INDEX "Payment_userId_appId_productId_key" ON "Payment"("userId", "appId", "productId");
PRAGMA foreign_keys=ON;
PRAGMA defer_foreign_keys=OFF;

-- CreateIndex
CREATE INDEX "PaymentNotification_paymentId_idx" ON "PaymentNotification"("paymentId");

