-- Written by hand (a storage parameter, which prisma/schema.prisma cannot express).
-- Half of each page of the outbox is left free when rows are inserted, so that the worker's claim,
-- which changes no indexed column, is a HOT update: the new row version goes on the same page and
-- no index gets a new entry (see claimDueMessages in src/db/outbox-sql.ts for the figures).
-- Rows written before this migration keep their pages; new pages follow the setting.
ALTER TABLE "OutboxMessage" SET (fillfactor = 50);
