-- The admin `apps(filter: { sourceId })` page and its totalCount answer by index, in id order.
-- Without it both providers read every app state: at 100,000 rows PostgreSQL's Seq Scan removed
-- all 100,000 by filter and sorted (204 ms a page and 178 ms the count in the review, 6-11 ms warm
-- here), SQLite 96-579 ms. With it: an index scan in id order, under 0.1 ms (page and count).
-- sourceId never changes after an app state's insert; on PostgreSQL an update of a row already
-- writes every index ("updatedAt" is indexed, so no AppState update is HOT), this one too: 5,000
-- updates took 144-690 ms with or without it here, within the noise. Building it on 100,000 app
-- states took 0.16-0.41 s on PostgreSQL, writes to AppState waiting meanwhile (in a transaction).

-- CreateIndex
CREATE INDEX "AppState_sourceId_id_idx" ON "AppState"("sourceId", "id");

