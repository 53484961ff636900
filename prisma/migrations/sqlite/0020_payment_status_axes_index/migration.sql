-- `payments` filtered by status reads only the rows that can derive to the wanted statuses
-- (payment-service.ts statusCandidates): the distinct combinations of the axes the status is
-- derived from, by this index (a loose scan on PostgreSQL), and the rows of the combinations that can match, in
-- id order. Before, every row the other conditions left was read and given its status in memory:
-- at 200,000 payments over 2,000 users (bench/payment-status-scale.ts, three runs)
-- `payments(first: 20, filter: {status: […]}) { totalCount }` took 8.7-17.4 s for a status no
-- payment had, on SQLite and PostgreSQL alike; SIGNATURE_REQUIRED (20,000 matches) 2.5-7.8 s,
-- PURCHASED (80,000) 3.9-6.3 s. With it: a status no payment has 2-6 ms on PostgreSQL, 21-32 ms on
-- SQLite (its combinations by a scan of this index); SIGNATURE_REQUIRED 0.38-0.58 s / 0.33-0.42 s;
-- PURCHASED 1.6-1.8 s / 1.7-2.0 s (the count still reads its matches). The axes change with the
-- purchase flow's steps, so this index is written with them.

-- CreateIndex
CREATE INDEX "Payment_status_axes_idx" ON "Payment"("paymentNeed", "developerSync", "signatureStatus", "paymentStatus", "signingForRestore", "id");
