import type { PaymentStatusAxes } from '../domain/payment-status.js';
import { raw } from '../generated/prisma-sqlite/internal/prismaNamespace.js';
import type { DriverHandle, SqlRunner } from './driver-sql.js';

/**
 * The SQL side of `payments` filtered by status (payment-service.ts): which combinations of the
 * stored axes the status is derived from are held at all, so that only the rows of those that can
 * derive to a wanted status are read. Same rules as list-sql.ts (quoted identifiers, no casts).
 */

/**
 * The distinct (paymentNeed, developerSync, signatureStatus, paymentStatus, signingForRestore) of
 * Payment, from "Payment_status_axes_idx" (tens: a combination is a step of the purchase flow).
 * PostgreSQL by a loose scan, a few index probes per combination held (each column of the next one
 * its own probe: no LATERAL on SQLite to share the form). SQLite by a scan of the index: in its
 * recursive form it compared only the first column by the index (a CTE's columns have no affinity),
 * each probe reading all the rows of a paymentNeed; the scan took 20 ms at 200,000 payments.
 */
export async function distinctPaymentAxes(db: SqlRunner, provider: DriverHandle['kind']): Promise<PaymentStatusAxes[]> {
  const rows =
    provider === 'sqlite'
      ? await db.$queryRaw<HeldAxes[]>`SELECT DISTINCT ${raw(AXES)} FROM "Payment"`
      : await db.$queryRaw<HeldAxes[]>`
    WITH RECURSIVE "axes"(${raw(AXES)}) AS (
      SELECT * FROM (SELECT ${raw(AXES)} FROM "Payment" ORDER BY ${raw(AXES)} LIMIT 1) AS "first"
      UNION ALL
      SELECT ${next('paymentNeed')}, ${next('developerSync')}, ${next('signatureStatus')},
        ${next('paymentStatus')}, ${next('signingForRestore')}
      FROM "axes" WHERE "axes"."paymentNeed" IS NOT NULL
    )
    SELECT * FROM "axes" WHERE "paymentNeed" IS NOT NULL`;
  // SQLite answers a boolean column as 0 or 1 outside a model's read.
  return rows.map((row) => ({ ...row, signingForRestore: Boolean(row.signingForRestore) }));
}

type HeldAxes = Omit<PaymentStatusAxes, 'signingForRestore'> & { signingForRestore: unknown };

const AXES = '"paymentNeed", "developerSync", "signatureStatus", "paymentStatus", "signingForRestore"';
const PREVIOUS =
  '"axes"."paymentNeed", "axes"."developerSync", "axes"."signatureStatus", "axes"."paymentStatus", "axes"."signingForRestore"';

/** One column of the combination after the row's, by the index (row values compare in index order). */
function next(column: keyof PaymentStatusAxes) {
  return raw(`(SELECT "${column}" FROM "Payment" WHERE (${AXES}) > (${PREVIOUS}) ORDER BY ${AXES} LIMIT 1)`);
}
