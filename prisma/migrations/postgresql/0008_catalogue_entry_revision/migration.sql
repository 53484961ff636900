-- AlterTable
ALTER TABLE "CatalogApp" ADD COLUMN     "entryRevision" INTEGER NOT NULL DEFAULT 0;

-- Written by hand (a trigger, which prisma/schema.prisma cannot express): entryRevision moves
-- whenever entry changes, whoever writes it (the Syncer's upserts, uploads, Prisma, a hand-run
-- statement), and an update cannot set it otherwise: the catalogue's pages keep entries parsed by
-- (id, entryRevision) and read again only those that moved (src/services/catalog-entries.ts).
CREATE FUNCTION "CatalogApp_entryRevision"() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  NEW."entryRevision" := OLD."entryRevision" + CASE WHEN NEW."entry" IS DISTINCT FROM OLD."entry" THEN 1 ELSE 0 END;
  RETURN NEW;
END;
$$;
CREATE TRIGGER "CatalogApp_entryRevision" BEFORE UPDATE ON "CatalogApp"
FOR EACH ROW EXECUTE FUNCTION "CatalogApp_entryRevision"();
