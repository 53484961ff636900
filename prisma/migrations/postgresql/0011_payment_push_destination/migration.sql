-- AlterTable
ALTER TABLE "OutboxMessage" ADD COLUMN     "destination" TEXT,
ALTER COLUMN "url" DROP NOT NULL;


-- Written by hand: a payment push names its receiver, whose URL (with any token in it) is read from
-- the configuration at each attempt. The pushes already written lose their stored URL: the ones still
-- queued go where the configuration says now, and no token stays in the table.
UPDATE "OutboxMessage"
SET "destination" = CASE WHEN "topic" = 'payment_state_update' THEN 'frontend' ELSE 'wallet' END, "url" = NULL
WHERE "kind" = 'payment';
