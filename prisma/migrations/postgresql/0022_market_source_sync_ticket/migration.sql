-- Each sync of a market source takes the next "syncTicket" of its row at its start (one
-- conditional UPDATE, whatever instance runs it), and writes its outcome (catalogue, hash, sync
-- status, failure) only while "syncOutcomeTicket", the number of the sync whose outcome is stored,
-- is below its own: a sync that started earlier (read an older index) and finishes later no longer
-- replaces a later one's catalogue, and an older failure no longer overwrites a later success
-- (src/services/catalogue-sync.ts). Constant defaults: both providers add the columns without
-- rewriting the table (Prisma's generated SQLite migration copied it, and dropped the hand-written
-- caseless index of 0021 with it).

-- AlterTable
ALTER TABLE "MarketSource" ADD COLUMN     "syncTicket" INTEGER NOT NULL DEFAULT 0,
ADD COLUMN     "syncOutcomeTicket" INTEGER NOT NULL DEFAULT 0;
