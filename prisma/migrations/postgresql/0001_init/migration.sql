-- CreateTable
CREATE TABLE "MarketSource" (
    "id" SERIAL NOT NULL,
    "sourceId" TEXT NOT NULL,
    "title" TEXT NOT NULL,
    "type" TEXT NOT NULL,
    "baseUrl" TEXT,
    "description" TEXT,
    "priority" INTEGER NOT NULL DEFAULT 100,
    "nsfw" BOOLEAN NOT NULL DEFAULT false,
    "isActive" BOOLEAN NOT NULL DEFAULT true,
    "activeRemote" TEXT,
    "createdAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updatedAt" TIMESTAMP(3) NOT NULL,

    CONSTRAINT "MarketSource_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "CatalogApp" (
    "id" SERIAL NOT NULL,
    "sourceId" TEXT NOT NULL,
    "appId" TEXT NOT NULL,
    "name" TEXT NOT NULL,
    "version" TEXT NOT NULL,
    "versions" JSONB NOT NULL,
    "cfgType" TEXT NOT NULL DEFAULT 'app',
    "title" TEXT,
    "description" TEXT,
    "searchText" TEXT NOT NULL,
    "paid" BOOLEAN NOT NULL DEFAULT false,
    "price" JSONB,
    "entry" JSONB NOT NULL,
    "createdAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updatedAt" TIMESTAMP(3) NOT NULL,

    CONSTRAINT "CatalogApp_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "CatalogAppCategory" (
    "catalogAppId" INTEGER NOT NULL,
    "category" TEXT NOT NULL,

    CONSTRAINT "CatalogAppCategory_pkey" PRIMARY KEY ("catalogAppId","category")
);

-- CreateTable
CREATE TABLE "AppState" (
    "id" SERIAL NOT NULL,
    "userId" TEXT NOT NULL,
    "sourceId" TEXT NOT NULL,
    "appName" TEXT NOT NULL,
    "rawAppName" TEXT,
    "title" TEXT,
    "cfgType" TEXT,
    "installedVersion" TEXT,
    "targetVersion" TEXT,
    "state" TEXT NOT NULL DEFAULT '',
    "reason" TEXT,
    "message" TEXT,
    "progress" TEXT,
    "opType" TEXT,
    "opId" TEXT,
    "eventTime" TIMESTAMP(3) NOT NULL,
    "createdAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updatedAt" TIMESTAMP(3) NOT NULL,

    CONSTRAINT "AppState_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "Task" (
    "id" SERIAL NOT NULL,
    "taskId" TEXT NOT NULL,
    "type" TEXT NOT NULL,
    "status" TEXT NOT NULL,
    "userId" TEXT NOT NULL,
    "sourceId" TEXT NOT NULL,
    "appName" TEXT NOT NULL,
    "version" TEXT,
    "opId" TEXT,
    "progress" INTEGER NOT NULL DEFAULT 0,
    "metadata" JSONB NOT NULL,
    "result" JSONB,
    "error" TEXT,
    "idempotencyKey" TEXT,
    "activeKey" TEXT,
    "retryOfTaskId" TEXT,
    "createdAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "startedAt" TIMESTAMP(3),
    "completedAt" TIMESTAMP(3),
    "updatedAt" TIMESTAMP(3) NOT NULL,

    CONSTRAINT "Task_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "Payment" (
    "id" SERIAL NOT NULL,
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
    "createdAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updatedAt" TIMESTAMP(3) NOT NULL,

    CONSTRAINT "Payment_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "HistoryRecord" (
    "id" SERIAL NOT NULL,
    "type" TEXT NOT NULL,
    "message" TEXT NOT NULL,
    "app" TEXT,
    "userId" TEXT NOT NULL,
    "time" TIMESTAMP(3) NOT NULL,
    "extended" JSONB,

    CONSTRAINT "HistoryRecord_pkey" PRIMARY KEY ("id")
);

-- CreateIndex
CREATE UNIQUE INDEX "MarketSource_sourceId_key" ON "MarketSource"("sourceId");

-- CreateIndex
CREATE UNIQUE INDEX "MarketSource_activeRemote_key" ON "MarketSource"("activeRemote");

-- CreateIndex
CREATE INDEX "CatalogApp_name_idx" ON "CatalogApp"("name");

-- CreateIndex
CREATE UNIQUE INDEX "CatalogApp_sourceId_appId_key" ON "CatalogApp"("sourceId", "appId");

-- CreateIndex
CREATE UNIQUE INDEX "CatalogApp_sourceId_name_key" ON "CatalogApp"("sourceId", "name");

-- CreateIndex
CREATE INDEX "CatalogAppCategory_category_idx" ON "CatalogAppCategory"("category");

-- CreateIndex
CREATE INDEX "AppState_appName_idx" ON "AppState"("appName");

-- CreateIndex
CREATE INDEX "AppState_updatedAt_idx" ON "AppState"("updatedAt");

-- CreateIndex
CREATE UNIQUE INDEX "AppState_userId_sourceId_appName_key" ON "AppState"("userId", "sourceId", "appName");

-- CreateIndex
CREATE UNIQUE INDEX "Task_taskId_key" ON "Task"("taskId");

-- CreateIndex
CREATE UNIQUE INDEX "Task_activeKey_key" ON "Task"("activeKey");

-- CreateIndex
CREATE INDEX "Task_userId_sourceId_appName_idx" ON "Task"("userId", "sourceId", "appName");

-- CreateIndex
CREATE INDEX "Task_status_idx" ON "Task"("status");

-- CreateIndex
CREATE INDEX "Task_createdAt_idx" ON "Task"("createdAt");

-- CreateIndex
CREATE UNIQUE INDEX "Task_userId_idempotencyKey_key" ON "Task"("userId", "idempotencyKey");

-- CreateIndex
CREATE INDEX "Payment_userId_sourceId_appId_idx" ON "Payment"("userId", "sourceId", "appId");

-- CreateIndex
CREATE UNIQUE INDEX "Payment_userId_appId_productId_key" ON "Payment"("userId", "appId", "productId");

-- CreateIndex
CREATE INDEX "HistoryRecord_userId_time_idx" ON "HistoryRecord"("userId", "time");

-- CreateIndex
CREATE INDEX "HistoryRecord_type_idx" ON "HistoryRecord"("type");

-- CreateIndex
CREATE INDEX "HistoryRecord_app_idx" ON "HistoryRecord"("app");

-- CreateIndex
CREATE INDEX "HistoryRecord_time_idx" ON "HistoryRecord"("time");

-- AddForeignKey
ALTER TABLE "CatalogAppCategory" ADD CONSTRAINT "CatalogAppCategory_catalogAppId_fkey" FOREIGN KEY ("catalogAppId") REFERENCES "CatalogApp"("id") ON DELETE CASCADE ON UPDATE CASCADE;
