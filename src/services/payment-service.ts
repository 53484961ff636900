import { canSee, userScope, type Viewer } from '../auth/viewer.js';
import { whenAvailable } from '../db/availability.js';
import type { Db } from '../db/client.js';
import { providerOf } from '../db/driver-sql.js';
import type { CatalogAppRow, PaymentRow, Prisma } from '../db/models.js';
import { distinctPaymentAxes } from '../db/payment-status-sql.js';
import { removeOldPaymentNotifications } from '../db/retention-sql.js';
import { MAX_APP_NAME_LENGTH, MAX_SOURCE_ID_LENGTH } from '../domain/app-key.js';
import { checkIdArgument, NotFoundError } from '../domain/errors.js';
import { defineFilter, derived, equalsId, oneOf } from '../domain/filters.js';
import {
  derivePaymentStatus,
  type PaymentStatus,
  type PaymentStatusAxes,
  statusesOfAxes,
} from '../domain/payment-status.js';
import { type ProductTerms, productIdOf } from '../domain/payment-terms.js';
import type { EventBus } from '../events/change-feed.js';
import { readEach } from '../events/subscription-reads.js';
import { type Removal, removeInBatches } from '../platform/bounded-removal.js';
import type { CatalogService } from './catalog-service.js';
import { batchedCount, batchedFinder, type ClientGone } from './derived-pages.js';
import {
  type Connection,
  idBounds,
  type PageArgs,
  type PageWindow,
  paginateQuery,
  paginateWindow,
} from './pagination.js';
import { readTerms } from './payment-pushes.js';

export interface PaymentFilter {
  userId?: string | null;
  sourceId?: string | null;
  appId?: string | null;
  status?: PaymentStatus[] | null;
}

/** A payment with its derived status, as PaymentFilter's status rule reads it. */
export type PaymentWithStatus = PaymentRow & { derived: { status: PaymentStatus } };

/**
 * What each PaymentFilter field means, for the SQL and the subscription alike (userId: userScope).
 * The status is derived from five columns, so that rule applies in memory, after the SQL ones.
 */
export const PAYMENT_FILTER = defineFilter<Omit<PaymentFilter, 'userId'>, PaymentWithStatus, Prisma.PaymentWhereInput>({
  sourceId: equalsId('sourceId', MAX_SOURCE_ID_LENGTH),
  appId: equalsId('appId', MAX_APP_NAME_LENGTH),
  status: derived(oneOf('status')),
});

export const PAYMENT_CURSOR = 'payment';

/**
 * Combinations of axes a status filter names one by one (five parameters each: Prisma takes at most
 * 999 a statement on SQLite, db/chunks.ts); past it, the values each axis takes among them, a looser superset.
 */
export const MAX_NAMED_AXES = 64;

/** Reads of payment states. Their secrets (JWS, VC) never leave this layer through the schema. */
/** A user's purchase of the product a catalogue entry sells, from whichever source it was bought. */
export function purchaseOfApp(
  db: Db,
  userId: string,
  app: Pick<CatalogAppRow, 'appId' | 'price'>,
): Promise<PaymentRow | null> {
  const productId = productIdOf(app.price, app.appId);
  return db.payment.findUnique({ where: { userId_appId_productId: { userId, appId: app.appId, productId } } });
}

/** Pushes a payment lists (Payment.notifications): the newest. */
export const MAX_LISTED_NOTIFICATIONS = 100;

export class PaymentService {
  constructor(
    private readonly db: Db,
    private readonly maxPageSize: number,
    private readonly bus: EventBus,
    /** Whether a source is offered to the viewer (forApp). */
    private readonly catalog: Pick<CatalogService, 'offers'>,
  ) {}

  /**
   * Changes of the payments the viewer may see that match the filter, re-read at delivery (so the
   * status is current and nothing but the schema's fields leaves the service).
   */
  subscribe(viewer: Viewer, filter_: PaymentFilter = {}): AsyncIterable<PaymentRow> {
    const userId = userScope(viewer, filter_.userId);
    const wanted = PAYMENT_FILTER.compile(filter_);
    const wantedKey = wanted.only(['sourceId', 'appId']);
    const changes = this.bus.subscribe(
      'payment:updated',
      (event) => (userId === undefined || event.userId === userId) && wantedKey.matches(event),
    );
    return readEach(changes, async (event) => {
      const payment = await whenAvailable(() => this.db.payment.findUnique({ where: { id: event.paymentId } }));
      return payment && (!wanted.hasDerived || wanted.matches(this.withStatus(payment))) ? payment : null;
    });
  }

  /**
   * The newest MAX_LISTED_NOTIFICATIONS pushes recorded for the buyer's frontend and wallet, oldest
   * first. Every resendPaymentCredential records one more: all of them, one payment's answer was
   * 2.2 MB at 5,000.
   */
  async notifications(payment: PaymentRow) {
    const newest = await this.db.paymentNotification.findMany({
      where: { paymentId: payment.id },
      orderBy: { id: 'desc' },
      take: MAX_LISTED_NOTIFICATIONS,
    });
    return newest.reverse();
  }

  /**
   * What the payment's product costs (payment-pushes.ts readTerms, signed terms first). Read once
   * per row object, so a request selecting both `price` and `product` reads the catalogue once.
   */
  termsOf(payment: PaymentRow): Promise<ProductTerms | null> {
    let terms = this.terms.get(payment);
    if (!terms) {
      terms = readTerms(this.db, payment, 'signed');
      this.terms.set(payment, terms);
    }
    return terms;
  }

  private readonly terms = new WeakMap<PaymentRow, Promise<ProductTerms | null>>();

  statusOf(payment: PaymentRow): PaymentStatus {
    return derivePaymentStatus(payment);
  }

  private withStatus(payment: PaymentRow): PaymentWithStatus {
    return { ...payment, derived: { status: this.statusOf(payment) } };
  }

  /** A page of payments; a status filter's scan stops once `gone` says the client left (derived-pages.ts). */
  async list(
    viewer: Viewer,
    filter: PaymentFilter = {},
    page: PageArgs = {},
    gone?: ClientGone,
  ): Promise<Connection<PaymentRow>> {
    const userId = userScope(viewer, filter.userId);
    const wanted = PAYMENT_FILTER.compile(filter);
    const where: Prisma.PaymentWhereInput = { ...(userId !== undefined ? { userId } : {}), ...wanted.where };
    if (!wanted.hasDerived) {
      return paginateQuery(
        PAYMENT_CURSOR,
        page,
        this.maxPageSize,
        (window) => this.db.payment.findMany({ ...window, where: { AND: [where, window.where] } }),
        () => this.db.payment.count({ where }),
      );
    }
    // The status is derived (domain/payment-status.ts, the one rule), so it applies to the rows
    // the SQL conditions leave, read a batch at a time (derived-pages.ts), never all at once: of
    // all users', those that can derive to a wanted status (statusCandidates). One user's are few,
    // read by their index; with the candidates, SQLite walked the status index instead (at 200,000
    // payments 89 ms for one user's 100 against 5-13 ms).
    let candidates: Promise<Prisma.PaymentWhereInput | null> | undefined;
    const read = async (window: PageWindow) => {
      candidates ??= userId === undefined ? this.statusCandidates(filter.status ?? []) : Promise.resolve({});
      const canMatch = await candidates;
      if (!canMatch) return [];
      return this.db.payment.findMany({
        where: { AND: [where, canMatch, idBounds(window)] },
        orderBy: { id: window.fromNewest ? 'desc' : 'asc' },
        take: window.take,
      });
    };
    const keep = (rows: PaymentRow[]) => rows.filter((row) => wanted.matches(this.withStatus(row)));
    return paginateWindow(PAYMENT_CURSOR, page, this.maxPageSize, batchedFinder(read, keep, gone), () =>
      batchedCount(read, keep, gone),
    );
  }

  /**
   * The rows that can have a wanted status: those whose axes, as held by some payment
   * (distinctPaymentAxes), give one whatever their productId, jws and vc (payment-status.ts
   * statusesOfAxes); derivePaymentStatus decides each. Before, a status filter read every row the
   * other conditions left: at 200,000 payments `payments(first: 20, filter: {status: […]}) { totalCount }`
   * took 8.7-17.4 s for a status no payment had; with them 2-6 ms on PostgreSQL, 21-32 ms on SQLite
   * (more in 0020_payment_status_axes_index).
   */
  private async statusCandidates(wanted: readonly PaymentStatus[]): Promise<Prisma.PaymentWhereInput | null> {
    const held = await distinctPaymentAxes(this.db, providerOf(this.db));
    const fit = held.filter((axes) => {
      const statuses = statusesOfAxes(axes);
      return wanted.some((status) => statuses.has(status));
    });
    if (fit.length === 0) return null;
    if (fit.length <= MAX_NAMED_AXES) return { OR: fit };
    // Many (a status most steps can show, or hand-edited rows): the values each axis takes among them.
    const among = (axis: keyof Omit<PaymentStatusAxes, 'signingForRestore'>) => {
      const values = [...new Set(fit.map((axes) => axes[axis]))];
      return values.length <= MAX_NAMED_AXES ? { [axis]: { in: values } } : {};
    };
    const restore = [...new Set(fit.map((axes) => axes.signingForRestore))];
    return {
      ...among('paymentNeed'),
      ...among('developerSync'),
      ...among('signatureStatus'),
      ...among('paymentStatus'),
      ...(restore.length === 1 ? { signingForRestore: restore[0] as boolean } : {}),
    };
  }

  /**
   * The viewer's payment for an app of a source: null for an app they never started to buy,
   * NOT_FOUND for one the catalogue does not have. A source not offered to the viewer (an inactive
   * remote, to a non-admin) does not exist for them, so every app of it is NOT_FOUND, as in
   * purchaseApp and restorePurchase, but for a payment they began there (theirs to read): a null
   * there told its apps from the ones it does not have.
   */
  async forApp(viewer: Viewer, sourceId: string, appId: string): Promise<PaymentRow | null> {
    checkIdArgument('sourceId', sourceId, MAX_SOURCE_ID_LENGTH);
    checkIdArgument('appId', appId, MAX_APP_NAME_LENGTH);
    const app = await this.db.catalogApp.findUnique({ where: { sourceId_appId: { sourceId, appId } } });
    const payment = app && (await purchaseOfApp(this.db, viewer.userId, app));
    if (!app || (payment?.sourceId !== sourceId && !(await this.catalog.offers(viewer, sourceId)))) {
      throw new NotFoundError(`App ${appId} is not in the catalogue of source ${sourceId}`);
    }
    return payment;
  }

  /**
   * Deletes the pushes (Payment.notifications) written before `cutoff` whose delivery is over, in
   * bounded statements until none is left or `deadline` (epoch ms) has passed. The payments
   * themselves stay: they are what a user bought.
   */
  removeOldNotifications(cutoff: Date, deadline = Infinity): Promise<Removal> {
    return removeInBatches(
      (limit) => removeOldPaymentNotifications(this.db, providerOf(this.db), cutoff, limit),
      deadline,
    );
  }

  async getById(viewer: Viewer, id: number): Promise<PaymentRow | null> {
    const row = await this.db.payment.findUnique({ where: { id } });
    return row && canSee(viewer, row.userId) ? row : null;
  }
}
