-- The admin `tasks` filters by app, source and type answer by index, newest first. Without these,
-- at 300,000 finished tasks PostgreSQL walked "Task_pkey" backwards through every task for an
-- appName no task has (Rows Removed by Filter: 300000; 64-562 ms here, 1.1 s cold in the review), sourceId took
-- the (userId, sourceId, appName) index and sorted, and type CLONE's totalCount was a seq scan
-- (99-132 ms); SQLite scanned the table (70-137 ms). With them: under 1 ms each
-- (bench/list-indexes.ts). appName, sourceId and type never change after a task's insert, so they
-- cost the insert only: the three together +0.1-0.2 ms per task insert on PostgreSQL (254-325 ->
-- 369-491 us, client round trip included), 0-40 us on SQLite (5,000 inserts in one transaction,
-- three alternating pairs). Not status or progress: they change on every update of a task.
-- Building them on 300k tasks took 1.7 s on PostgreSQL and 0.9 s on SQLite, writes to Task
-- waiting meanwhile (the migration runs in a transaction, so not CONCURRENTLY).

-- CreateIndex
CREATE INDEX "Task_appName_id_idx" ON "Task"("appName", "id");

-- CreateIndex
CREATE INDEX "Task_sourceId_id_idx" ON "Task"("sourceId", "id");

-- CreateIndex
CREATE INDEX "Task_type_id_idx" ON "Task"("type", "id");

