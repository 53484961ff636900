-- Market source ids are unique ignoring letter case: `FX` beside `fx` were two sources no one could
-- tell apart in a list. addMarketSource refuses such an id (CONFLICT naming the existing one); the
-- unique index below, on lower("sourceId") (source ids are ASCII: lower() folds them alike in
-- SQLite and PostgreSQL), makes it a database rule, so two adds at the same moment cannot both
-- pass the service's check. Prisma's schema cannot express an index on an expression: it is
-- written by hand here.
--
-- A database may already hold such pairs (added before this release). They are kept as they are:
-- renaming one would detach its installed apps, which name their source by id, and refusing to
-- start would leave the admin no way to choose. All but the oldest of each group are marked
-- "caseDuplicate" and left out of the index; the oldest stays in it, so no further id of that
-- group can be added. Remove the duplicates with removeMarketSource when convenient.

-- AlterTable
ALTER TABLE "MarketSource" ADD COLUMN "caseDuplicate" BOOLEAN NOT NULL DEFAULT false;

-- Written by hand: the sources added after an older one of the same id but for letter case.
UPDATE "MarketSource" SET "caseDuplicate" = true
WHERE EXISTS (
  SELECT 1 FROM "MarketSource" AS "older"
  WHERE lower("older"."sourceId") = lower("MarketSource"."sourceId") AND "older"."id" < "MarketSource"."id"
);

-- CreateIndex (by hand: on an expression, over the sources not marked)
CREATE UNIQUE INDEX "MarketSource_sourceId_caseless_key" ON "MarketSource"(lower("sourceId")) WHERE NOT "caseDuplicate";
