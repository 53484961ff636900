-- CreateIndex
CREATE INDEX "AppState_userId_id_idx" ON "AppState"("userId", "id");

-- CreateIndex
CREATE INDEX "Task_userId_id_idx" ON "Task"("userId", "id");

