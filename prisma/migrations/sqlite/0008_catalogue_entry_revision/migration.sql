-- Written by hand: Prisma redefines the whole table to add a column; SQLite adds one in place.
ALTER TABLE "CatalogApp" ADD COLUMN "entryRevision" INTEGER NOT NULL DEFAULT 0;

-- entryRevision moves whenever entry changes, whoever writes it (the Syncer's upserts, uploads,
-- Prisma, a hand-run statement): the catalogue's pages keep entries parsed by (id, entryRevision)
-- and read again only those that moved (src/services/catalog-entries.ts). An AFTER trigger, as
-- SQLite's cannot change NEW; its own UPDATE does not fire it again (it sets no entry).
CREATE TRIGGER "CatalogApp_entryRevision" AFTER UPDATE OF "entry" ON "CatalogApp"
FOR EACH ROW WHEN NEW."entry" IS NOT OLD."entry"
BEGIN
  UPDATE "CatalogApp" SET "entryRevision" = OLD."entryRevision" + 1 WHERE "id" = NEW."id";
END;

-- Nor may a writer move it back: a later change would then reuse a revision already kept with
-- another entry.
CREATE TRIGGER "CatalogApp_entryRevision_forward" BEFORE UPDATE OF "entryRevision" ON "CatalogApp"
FOR EACH ROW WHEN NEW."entryRevision" < OLD."entryRevision"
BEGIN
  SELECT RAISE(ABORT, 'CatalogApp.entryRevision only moves forward');
END;
