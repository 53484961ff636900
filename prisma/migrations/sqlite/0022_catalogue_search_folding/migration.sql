-- Catalogue search folds text beyond lower-casing (domain/search-fold.ts: NFKD, marks and format
-- characters dropped, ı and ς as i and σ). Rows stored before hold searchText folded the old way,
-- and a sync rewrites only the entries that changed (summaryHash): left alone, those rows would
-- never match the new way. This column records the folding each row's searchText holds; rows
-- below SEARCH_FOLDING are folded again at start (db/search-folding.ts), which SQL cannot do
-- itself (SQLite has no Unicode normalisation, and the folding must be the one searches use). Existing
-- rows get 0, the old folding; every write names the current one.
--
-- By hand on SQLite: Prisma's diff rebuilt the whole table, dropping migration 0008's
-- entryRevision triggers; a new column at the end needs only ADD COLUMN.

-- AlterTable
ALTER TABLE "CatalogApp" ADD COLUMN "searchFolding" INTEGER NOT NULL DEFAULT 0;
