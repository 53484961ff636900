-- The task engine's fair claim (claimPendingTasks in src/db/hot-path-sql.ts) numbers each user's
-- pending tasks in id order and counts each user's running ones. With this index both come from it
-- alone, already in (userId, id) order: 10,000 pending tasks of 100 users and 300,000 finished ones,
-- PostgreSQL 45 -> 10 ms per claim (no sort of the pending tasks before the window), SQLite 65 -> 37 ms
-- (bench/fair-claim.ts). Its key changes with a task's status, as "Task_status_idx"'s already does:
-- twice per task (claimed, ended).

-- CreateIndex
CREATE INDEX "Task_status_userId_id_idx" ON "Task"("status", "userId", "id");

