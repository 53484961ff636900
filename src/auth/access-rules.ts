/**
 * Who may use each root field: the authorization contract, one entry per field of Query, Mutation
 * and Subscription. The services enforce it (`userScope`/`canSee` in viewer.ts, and each mutation
 * acting as its viewer); test/authorization-matrix.test.ts generates a case for every field ×
 * viewer × transport × authentication mode from the schema and checks the outcome each rule
 * predicts. A root field without an entry here fails that test, and so does an entry without a
 * field.
 *
 * Nothing here is anonymous: every operation needs a viewer (HTTP 401, graphql-ws close 4403, SSE
 * 401 before anything runs).
 */
export type AccessRule =
  /** Any signed-in viewer; the data belongs to no user (catalogue, sources, system health). */
  | 'authenticated'
  /**
   * A user reads or changes only their own rows; naming another user is FORBIDDEN and another
   * user's object reads as null (or NOT_FOUND). Admins reach everyone's.
   */
  | 'own-data'
  /**
   * Always the viewer's own, admins included: the field has no way to name another user, and an
   * object of someone else's reads as not there.
   */
  | 'self'
  /** Admins only; anyone else gets FORBIDDEN. */
  | 'admin';

export interface FieldAccess {
  rule: AccessRule;
  /** Why this rule, in a line. */
  why: string;
}

export type RootTypeName = 'Query' | 'Mutation' | 'Subscription';

export const ACCESS_RULES = {
  Query: {
    app: { rule: 'own-data', why: "a user's installed app; `userId` other than yours is for admins" },
    apps: { rule: 'own-data', why: 'installed apps are per user; admins list and filter everyone' },
    catalog: {
      rule: 'authenticated',
      why: "the same for every user: the active remote's and the local sources' (an inactive source's: admins)",
    },
    chartRepo: { rule: 'own-data', why: "what the chart repo says for the viewer's (user, source) pairs" },
    components: {
      rule: 'authenticated',
      why: "system health with aggregate figures only; the chart_repo component's figures are the viewer's own",
    },
    history: { rule: 'own-data', why: "the audit trail of a user's tasks and payments" },
    marketSources: {
      rule: 'authenticated',
      why: 'the market sources are the same for every user; `includeInactive` is FORBIDDEN to non-admins',
    },
    node: {
      rule: 'own-data',
      why: 'refetches any Node: user-owned types (those with `userId`) as own-data, catalogue types for everyone',
    },
    paymentStatus: { rule: 'self', why: 'the viewer\'s own purchase of an app ("your payment state")' },
    payments: { rule: 'own-data', why: 'purchases are per buyer; admins see and filter everyone' },
    runtimeSnapshot: { rule: 'own-data', why: "a user's apps, tasks and chart-repo view; admins see everything" },
    task: { rule: 'own-data', why: "a task is its requester's; someone else's reads as null" },
    tasks: { rule: 'own-data', why: 'tasks are per requester; admins list and filter everyone' },
    viewer: { rule: 'authenticated', why: "the caller's own identity" },
    webhooks: { rule: 'admin', why: "webhooks are global settings; their deliveries carry every user's events" },
  },
  Mutation: {
    addMarketSource: { rule: 'admin', why: 'the server fetches from the URL, private addresses included' },
    addWebhook: { rule: 'admin', why: 'the server POSTs every matching event to the URL, private addresses included' },
    cancelTask: { rule: 'own-data', why: "the requester cancels their task; admins may cancel anyone's" },
    cloneApp: { rule: 'self', why: "clones one of the viewer's installed apps, as the viewer" },
    installApp: { rule: 'self', why: 'installs for the viewer; there is no user to name' },
    purchaseApp: { rule: 'self', why: "the buyer's own purchase" },
    redeliverWebhookDelivery: {
      rule: 'admin',
      why: "webhooks are global settings; the delivery carries any user's event",
    },
    removeMarketSource: { rule: 'admin', why: 'market sources are global settings' },
    removeWebhook: { rule: 'admin', why: 'webhooks are global settings' },
    resendPaymentCredential: { rule: 'self', why: "pushes the buyer's own credential to their own wallet" },
    restorePurchase: { rule: 'self', why: "restores the buyer's own purchase" },
    resumeApp: { rule: 'self', why: "starts one of the viewer's stopped apps again; there is no user to name" },
    retryTask: { rule: 'own-data', why: "the requester retries their task (as its owner); admins may retry anyone's" },
    selectMarketSource: { rule: 'admin', why: 'the active source is a global setting' },
    signatureCallback: { rule: 'self', why: "the buyer's wallet answers for the buyer's own purchase" },
    startFrontendPayment: { rule: 'self', why: "the buyer's frontend pays for the buyer's own purchase" },
    stopApp: { rule: 'self', why: "stops one of the viewer's running apps; there is no user to name" },
    submitPaymentTransaction: { rule: 'self', why: "the buyer's frontend reports the buyer's own payment" },
    submitSignature: { rule: 'self', why: "the buyer's wallet signs the buyer's own purchase" },
    syncMarketSource: { rule: 'admin', why: 'a sync makes the server fetch from the source' },
    uninstallApp: { rule: 'self', why: "removes one of the viewer's apps; there is no user to name" },
    uploadChart: { rule: 'admin', why: 'adds an app to the upload source, which every user sees' },
    upgradeApp: { rule: 'self', why: "upgrades one of the viewer's apps; there is no user to name" },
  },
  Subscription: {
    appUpdated: { rule: 'own-data', why: 'changes of apps the viewer may read (`apps`)' },
    catalogueChanged: { rule: 'authenticated', why: 'changes of the catalogue the viewer may read (`catalog`)' },
    historyAdded: { rule: 'own-data', why: 'records the viewer may read (`history`)' },
    paymentUpdated: { rule: 'own-data', why: 'changes of payments the viewer may read (`payments`)' },
    runtimeEvents: { rule: 'own-data', why: "changes of the viewer's `runtimeSnapshot`" },
    runtimeSnapshot: { rule: 'own-data', why: "the viewer's `runtimeSnapshot`, again after changes" },
    taskUpdated: { rule: 'own-data', why: 'changes of tasks the viewer may read (`tasks`)' },
  },
} as const satisfies Record<RootTypeName, Record<string, FieldAccess>>;
