-- `apps` filtered by stage or health reads only the rows that can derive to the wanted values
-- (installed-app-service.ts stageCandidates): the distinct states, by a loose scan of this index,
-- and the rows of the states that can match. Before, every row the other conditions left was read
-- and given its stage in memory: at 100,000 apps over 2,000 users (the review's fill)
-- `apps(first: 20, filter: {stage: [FAILED]}) { totalCount }` took 7.6-13.6 s on PostgreSQL and
-- 35-63 s on SQLite; a stage no app had 9.5-15.5 s and over 600 s. With it
-- (bench/derived-filter-scale.ts, 100,000 apps, 200,000 tasks of which 200 running): FAILED with
-- totalCount (16,666 matches) 0.45-0.6 s on both; UPGRADING (none) 18-35 ms; INSTALLING (200)
-- 19-41 ms; FAILED of one user 1-43 ms. `state` changes on most reports, so this index is
-- written with them.

-- CreateIndex
CREATE INDEX "AppState_state_idx" ON "AppState"("state");

