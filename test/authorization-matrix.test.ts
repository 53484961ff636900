import { SignJWT, UnsecuredJWT } from 'jose';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { ACCESS_RULES, type AccessRule, type FieldAccess } from '../src/auth/access-rules.js';
import { schema } from '../src/schema/index.js';
import { availableDatabases, type DatabaseKind } from './support/databases.js';
import { type FakeChartRepo, startFakeChartRepo } from './support/fake-chart-repo.js';
import {
  type Credentials,
  comparable,
  listingField,
  markersIn,
  nodeTypes,
  type Operation,
  OperationBuilder,
  type Outcome,
  overHttp,
  overSse,
  ownersIn,
  type Received,
  type RootField,
  rootFields,
  rowsOf,
  type SampleTable,
  sseSubscription,
  TRANSPORTS,
  type Transport,
  userIdArgument,
  WsSession,
} from './support/matrix.js';
import { AUTH_ENV, startTestServer, type TestServer, TOKENS, waitFor } from './support/server.js';

/**
 * The authorization matrix: every root field of the schema × anonymous, alice, bob and an admin ×
 * HTTP, graphql-ws and SSE × the three ways of authenticating (tokens, a gateway's header, JWTs),
 * each checked against the rule src/auth/access-rules.ts declares for the field. Operations are
 * generated from the schema: required arguments from the sample table below (bob's objects), the
 * selection every leaf field down to three levels, so a new root field, argument or type is in
 * the matrix without anyone writing a case for it.
 *
 * Servers: SQLite in every mode, PostgreSQL in token mode (the modes differ in how the viewer is
 * found, the databases in how rows are read); they run side by side, each one's cases in order.
 * Per server: reads; `node(id:)` of every Node type; mutations in two passes, first everything
 * that must change nothing of bob's (anonymous, alice, admins acting as themselves), each followed
 * by a look at bob's rows, then bob on his own objects and admins where the rule lets them act for
 * others; subscriptions, refused ones and then live ones that must carry their own user's events
 * and nobody else's; and credentials that must be refused.
 */

type User = 'alice' | 'bob' | 'admin';
type Principal = 'anonymous' | User;
const USERS: readonly User[] = ['alice', 'bob', 'admin'];
/** Viewer ids: the admin is `ops` in every mode (the demo data's user `admin` is just another owner). */
const VIEWER_ID: Record<User, string> = { alice: 'alice', bob: 'bob', admin: 'ops' };
/** Users with rows in the demo data. */
const OWNERS = ['alice', 'bob', 'admin'] as const;
const SOURCE = 'market.olares';

const JWT_SECRET = 'authorization-matrix-jwt-secret-0123456789';
const jwt = (sub: string, claims: Record<string, unknown> = {}, expires = '10m', secret = JWT_SECRET) =>
  new SignJWT(claims)
    .setProtectedHeader({ alg: 'HS256' })
    .setSubject(sub)
    .setExpirationTime(expires)
    .sign(new TextEncoder().encode(secret));
const bearer = (credential: string): Credentials => ({
  headers: { authorization: `Bearer ${credential}` },
  connectionParams: { authorization: `Bearer ${credential}` },
});
/** A user name a client writes into connectionParams: never an identity. */
const CLAIMED_IN_PARAMS = { 'X-Bfl-User': 'ops', user: 'ops', userId: 'ops' };

type ModeName = 'token' | 'gateway' | 'jwt';
interface Mode {
  env: Record<string, string>;
  credentials(user: User): Promise<Credentials>;
  /** Credentials that must be refused like none at all. */
  forged(): Promise<Record<string, Credentials>>;
}

const MODES: Record<ModeName, Mode> = {
  token: {
    env: AUTH_ENV,
    credentials: async (user) => bearer(TOKENS[user === 'admin' ? 'ops' : user]),
    forged: async () => ({ 'an unknown token': bearer('not-a-known-token-0000') }),
  },
  gateway: {
    env: { AUTH_USER_HEADER: 'X-Bfl-User', AUTH_ADMIN_USERS: 'ops' },
    // The header travels on the HTTP request, the SSE request and the WebSocket upgrade.
    credentials: async (user) => ({ headers: { 'X-Bfl-User': VIEWER_ID[user] }, connectionParams: {} }),
    forged: async () => ({
      'a header that is no user id': { headers: { 'X-Bfl-User': 'ops admin' }, connectionParams: {} },
      'a user named only in connectionParams': { headers: {}, connectionParams: CLAIMED_IN_PARAMS },
    }),
  },
  jwt: {
    env: { AUTH_JWT_SECRET: JWT_SECRET },
    credentials: async (user) => bearer(await jwt(VIEWER_ID[user], user === 'admin' ? { role: 'admin' } : {})),
    forged: async () => ({
      'a token signed with another secret': bearer(
        await jwt('ops', { role: 'admin' }, '10m', 'some-other-secret-of-at-least-32-chars'),
      ),
      'an expired token': bearer(await jwt('ops', { role: 'admin' }, '-1m')),
      'an unsigned token (alg none)': bearer(new UnsecuredJWT({ role: 'admin' }).setSubject('ops').encode()),
    }),
  },
};

const databases = await availableDatabases();
const SERVERS: { kind: DatabaseKind; mode: ModeName }[] = [
  { kind: 'sqlite', mode: 'token' },
  { kind: 'sqlite', mode: 'gateway' },
  { kind: 'sqlite', mode: 'jwt' },
  ...(databases.includes('postgresql') ? [{ kind: 'postgresql' as const, mode: 'token' as const }] : []),
];

const FIELDS = rootFields(schema);
const builder = new OperationBuilder(schema);
const ruleOf = (field: RootField): AccessRule | undefined =>
  (ACCESS_RULES[field.root] as Record<string, FieldAccess>)[field.name]?.rule;

/** What each owner's chart-repo status contains, as the fake chart repo answers for (owner, source). */
const chartApp = (owner: string, generation = 1) => `chart-app-of-${owner}-${generation}`;

/** Each server with its own chart repo, which answers each owner's (owner, source) call with their chart apps. */
const started = new Map<(typeof SERVERS)[number], { server: TestServer; chartRepo: FakeChartRepo }>();
// Every server starts before any case runs, one after the other: they share this process, and
// seeding the demo data is one transaction, which a busy event loop can make time out.
beforeAll(async () => {
  for (const each of SERVERS) {
    const chartRepo = await startFakeChartRepo();
    for (const owner of OWNERS) {
      chartRepo.setStatus(`${owner}/${SOURCE}`, { apps: [{ name: chartApp(owner), state: 'processing' }] });
    }
    // Every field of every type is selected (the snapshot's apps and tasks with their nested pages):
    // what is checked here is who may read them, not what they cost (test/query-cost.test.ts).
    const env = {
      MUTATION_RATE_PER_S: '0',
      CHART_REPO_URL: chartRepo.url,
      COLLECT_INTERVAL_MS: '1000',
      MAX_QUERY_COST: '10000000',
    };
    const server = await startTestServer(each.kind, { env: { ...MODES[each.mode].env, ...env } });
    started.set(each, { server, chartRepo });
  }
}, 120_000);
afterAll(async () => {
  await Promise.all(
    [...started.values()].map(({ server, chartRepo }) => Promise.all([server.stop(), chartRepo.stop()])),
  );
});

test('every root field of the schema has a rule, and every rule names a root field', () => {
  const inSchema = FIELDS.map(({ root, name }) => `${root}.${name}`).sort();
  const inTable = Object.entries(ACCESS_RULES)
    .flatMap(([root, fields]) => Object.keys(fields).map((name) => `${root}.${name}`))
    .sort();
  expect(inTable).toEqual(inSchema);
});

/** One server under test, with what the matrix knows about its data. */
interface World {
  label: string;
  server: TestServer;
  chartRepo: FakeChartRepo;
  credentials: Record<User, Credentials>;
  ws: Record<User, WsSession>;
  samples: SampleTable;
  /** Per owner: the global ids and task ids of their objects and their chart-repo apps. */
  markers: Record<string, Set<string>>;
  /** Per Node type: an object of bob's (owned types) or any object (the others). */
  nodeSamples: Map<string, string>;
}

async function run(world: World, principal: Principal, transport: Transport, operation: Operation): Promise<Outcome> {
  const credentials = principal === 'anonymous' ? null : world.credentials[principal];
  if (transport === 'http') return overHttp(world.server.url, credentials, operation);
  if (transport === 'sse') return overSse(world.server.url, credentials, operation);
  if (principal !== 'anonymous') return world.ws[principal].request(operation);
  const session = new WsSession(world.server.url, null);
  try {
    return await session.request(operation);
  } finally {
    await session.close();
  }
}

const codesOf = (outcome: Outcome) => outcome.errors.map((error) => error.extensions?.code ?? error.message);
const show = (outcome: Outcome) =>
  JSON.stringify({
    status: outcome.status,
    closeCode: outcome.closeCode,
    errors: codesOf(outcome),
    data: outcome.data,
  });

/** No credentials: HTTP 401 and UNAUTHENTICATED, graphql-ws closed with 4403, SSE 401 — and no data. */
function refusedUnauthenticated(outcome: Outcome): boolean {
  if (outcome.transport === 'ws') return outcome.closeCode === 4403 && outcome.data === null;
  return outcome.status === 401 && codesOf(outcome).includes('UNAUTHENTICATED') && outcome.data === null;
}

/** Refused as FORBIDDEN: a query's error, or a mutation's result (its union lists ForbiddenError). */
function forbidden(outcome: Outcome, field: string): boolean {
  const result = outcome.data?.[field] as { __typename?: string } | null | undefined;
  if (result?.__typename === 'ForbiddenError') return outcome.errors.length === 0;
  return codesOf(outcome).includes('FORBIDDEN') && (result ?? null) === null;
}

/** What in `value` belongs to someone other than `viewerId`: their user ids, their objects' ids. */
function foreignIn(world: World, viewerId: string, value: unknown): string[] {
  const problems: string[] = [];
  const owners = [...ownersIn(value)].filter((owner) => owner !== viewerId);
  if (owners.length) problems.push(`rows of ${owners.join(', ')}`);
  for (const [owner, markers] of Object.entries(world.markers)) {
    if (owner === viewerId) continue;
    const found = markersIn(value, markers);
    if (found.size) problems.push(`${owner}'s ${[...found].join(', ')}`);
  }
  return problems;
}

/** Whether `value` shows something of `owner`'s (a row, an id, their chart-repo apps). */
function shows(world: World, owner: string, value: unknown): boolean {
  return ownersIn(value).has(owner) || markersIn(value, world.markers[owner] ?? new Set()).size > 0;
}

/** One read (a query) by one viewer, and what it takes to judge it. */
interface Read {
  rule: AccessRule;
  principal: User;
  field: string;
  outcome: Outcome;
  /** The user the operation's `userId` names; undefined: none (the sample arguments point at bob's objects). */
  naming: string | undefined;
  /** Whether the field has a `userId` argument at all. */
  namesUsers: boolean;
  /** What an admin reads naming alice: exactly what alice must read naming nobody. */
  aliceAsAdminSees: Outcome | null;
}

/** The problems of one read against its field's rule. */
function readProblems(world: World, read: Read): string[] {
  const { rule, principal, field, outcome, naming } = read;
  const value = outcome.data?.[field];
  const problems: string[] = [];
  const noErrors = () => {
    if (outcome.errors.length) problems.push(`refused: ${show(outcome)}`);
    else if (value === undefined) problems.push(`no data: ${show(outcome)}`);
  };
  const showsBob = () => {
    if (!shows(world, 'bob', value)) problems.push(`does not show bob's data: ${show(outcome)}`);
  };
  const isolated = () => {
    for (const leak of foreignIn(world, VIEWER_ID[principal], value)) problems.push(`LEAK: ${leak}`);
  };

  if (rule === 'authenticated') {
    noErrors();
    if (principal !== 'admin') isolated();
    return problems;
  }
  if (rule === 'admin') {
    if (principal === 'admin') noErrors();
    else if (!forbidden(outcome, field)) problems.push(`not FORBIDDEN: ${show(outcome)}`);
    return problems;
  }
  const reachesOthers = rule === 'own-data' && principal === 'admin';
  if (naming === 'bob') {
    if (principal === 'bob' || reachesOthers) {
      noErrors();
      showsBob();
      // An admin naming bob may still get parts that are everyone's to an admin (the chart repo).
      if (principal === 'bob') isolated();
    } else if (!forbidden(outcome, field)) problems.push(`naming bob is not FORBIDDEN: ${show(outcome)}`);
    else isolated();
    return problems;
  }
  // Naming nobody: the sample arguments point at bob's objects.
  if (principal === 'bob') {
    noErrors();
    showsBob();
    isolated();
  } else if (reachesOthers) {
    noErrors();
    // Where the field names its user, an admin reaches bob's rows by naming him (the variant above).
    if (!read.namesUsers && !problems.length) showsBob();
  } else {
    // Someone else's object reads as null (or NOT_FOUND); a list holds the viewer's own rows only.
    if (outcome.errors.length && !codesOf(outcome).every((code) => code === 'NOT_FOUND' || code === 'FORBIDDEN')) {
      problems.push(`unexpected errors: ${show(outcome)}`);
    }
    isolated();
    const { aliceAsAdminSees } = read;
    if (principal === 'alice' && aliceAsAdminSees && !outcome.errors.length) {
      const mine = JSON.stringify(comparable(value));
      const asAdminSees = JSON.stringify(comparable(aliceAsAdminSees.data?.[field]));
      if (mine !== asAdminSees)
        problems.push(`differs from alice's data as an admin reads it: ${mine} ≠ ${asAdminSees}`);
    }
  }
  return problems;
}

/** The problems of a mutation that must not reach anyone else's data (it may succeed on the viewer's own). */
function confinedProblems(world: World, principal: User, field: string, outcome: Outcome): string[] {
  if (outcome.errors.length) return [`errors: ${show(outcome)}`];
  const value = outcome.data?.[field];
  if (value === undefined) return [`no data: ${show(outcome)}`];
  return foreignIn(world, VIEWER_ID[principal], value).map((leak) => `LEAK: ${leak}`);
}

/** The problems of a mutation its rule allows: any outcome but a refusal for not being the owner. */
function allowedProblems(field: string, outcome: Outcome): string[] {
  if (outcome.errors.length) return [`refused: ${show(outcome)}`];
  const typename = (outcome.data?.[field] as { __typename?: string } | null | undefined)?.__typename;
  if (!typename) return [`no result: ${show(outcome)}`];
  return typename === 'NotFoundError' || typename === 'ForbiddenError'
    ? [`refused as ${typename}: ${show(outcome)}`]
    : [];
}

/** Announces existing rows of `userId` again (no change), so that subscriptions that may see them get an event. */
async function announceRowsOf(server: TestServer, userId: string): Promise<void> {
  const { db } = server.app;
  const { bus } = server.app.services;
  const [app, task, record, payment] = await Promise.all([
    db.appState.findFirstOrThrow({ where: { userId } }),
    db.task.findFirstOrThrow({ where: { userId } }),
    db.historyRecord.findFirstOrThrow({ where: { userId } }),
    db.payment.findFirst({ where: { userId } }),
  ]);
  // Touched first: the runtime pushes a row read back only when it differs from the one it holds.
  const now = new Date();
  await Promise.all([
    db.appState.update({ where: { id: app.id }, data: { updatedAt: now } }),
    db.task.update({ where: { id: task.id }, data: { updatedAt: now } }),
  ]);
  bus.publish('app:updated', { userId, sourceId: app.sourceId, appName: app.appName });
  bus.publish('task:updated', { taskId: task.taskId, userId, sourceId: task.sourceId, appName: task.appName });
  bus.publish('history:added', { id: record.id, userId });
  if (payment) {
    bus.publish('payment:updated', { paymentId: payment.id, userId, sourceId: payment.sourceId, appId: payment.appId });
  }
}

describe.concurrent.each(SERVERS)('$mode mode on $kind', (setup) => {
  const { kind, mode: modeName } = setup;
  const mode = MODES[modeName];
  const world = { label: `${modeName}/${kind}` } as World;
  const field = (root: RootField['root'], name: string) =>
    FIELDS.find((each) => each.root === root && each.name === name) as RootField;

  beforeAll(async () => {
    const own = started.get(setup);
    if (!own) throw new Error(`the ${world.label} server did not start`);
    world.server = own.server;
    world.chartRepo = own.chartRepo;
    const { db } = world.server.app;
    world.credentials = Object.fromEntries(
      await Promise.all(USERS.map(async (user) => [user, await mode.credentials(user)])),
    ) as Record<User, Credentials>;
    world.ws = Object.fromEntries(
      USERS.map((user) => [user, new WsSession(world.server.url, world.credentials[user])]),
    ) as Record<User, WsSession>;

    // What the demo data lacks: a failed task of bob's (retryTask) and a purchase he completed
    // (resendPaymentCredential), which nobody else has.
    await db.payment.create({
      data: {
        userId: 'bob',
        sourceId: SOURCE,
        appId: 'rocketchat',
        appName: 'rocketchat',
        productId: 'rocketchat-license',
        developerName: 'demo-developer',
        paymentNeed: 'required',
        developerSync: 'completed',
        larePassSync: 'completed',
        signatureStatus: 'required_and_signed',
        paymentStatus: 'developer_confirmed',
        jws: 'matrix.jws.bob-rocketchat',
        vc: 'matrix-vc-bob-rocketchat',
        txHash: '0xbeef',
      },
    });
    await db.task.create({
      data: {
        taskId: 'matrix-bob-failed',
        type: 'INSTALL',
        status: 'FAILED',
        userId: 'bob',
        sourceId: SOURCE,
        appName: 'navidrome',
        version: '0.53.3',
        metadata: { cfgType: 'app', envs: [], appId: 'navidrome' },
        error: 'failed on purpose (authorization matrix)',
        completedAt: new Date(),
      },
    });

    // Every owner's objects, as an admin lists them: the ids that must never reach anyone else.
    world.markers = {};
    world.nodeSamples = new Map();
    for (const owner of OWNERS) world.markers[owner] = new Set([chartApp(owner, 1), chartApp(owner, 2)]);
    for (const { type, owned } of nodeTypes(schema)) {
      const listing = listingField(schema, type);
      // Without a way to list a user's objects of the type, the node test reports it.
      if (!listing || (owned && !listing.userFilter)) continue;
      const ids = type.getFields().taskId ? 'id taskId' : 'id';
      const selection = listing.connection ? `edges { node { ${ids} } }` : ids;
      for (const owner of owned ? OWNERS : [undefined]) {
        const args = [
          ...(listing.connection ? ['first: 100'] : []),
          ...(owner && listing.userFilter ? [`${listing.userFilter}: { userId: "${owner}" }`] : []),
        ];
        const query = `{ ${listing.name}${args.length ? `(${args.join(', ')})` : ''} { ${selection} } }`;
        const outcome = await overHttp(world.server.url, world.credentials.admin, {
          label: query,
          query,
          variables: {},
        });
        const listed = outcome.data?.[listing.name] as unknown;
        const rows = (
          listing.connection ? (listed as { edges: { node: unknown }[] }).edges.map((edge) => edge.node) : listed
        ) as { id: string; taskId?: string }[];
        if (owner) {
          for (const row of rows) {
            world.markers[owner]?.add(row.id);
            if (row.taskId) world.markers[owner]?.add(row.taskId);
          }
        }
        if ((owner === 'bob' || !owned) && rows[0]) world.nodeSamples.set(type.name, rows[0].id);
      }
    }

    const [bobsTask, bobsActiveTask] = await Promise.all([
      db.task.findFirstOrThrow({ where: { userId: 'bob', appName: 'gitea' } }),
      db.task.findFirstOrThrow({ where: { userId: 'bob', status: { in: ['PENDING', 'RUNNING'] } } }),
    ]);
    // Required arguments point at bob's objects, which alice has none of: his gitea, his purchases
    // of comfyui (signed, not paid) and rocketchat (completed). What alice buys herself (plex, which
    // she owns already) is not one of them, so the payment mutations meet bob's purchases only.
    world.samples = {
      sourceId: SOURCE,
      appName: 'gitea',
      appId: 'comfyui',
      productId: 'comfyui-license',
      'PurchaseAppInput.appId': 'plex',
      'ResendPaymentCredentialInput.productId': 'rocketchat-license',
      title: 'Gitea copy',
      txHash: '0xfeed',
      jws: 'matrix.jws.signature',
      signed: false,
      'InstallAppInput.version': '1.22.4',
      'UpgradeAppInput.version': '1.22.0',
      'Query.task.taskId': bobsTask.taskId,
      'CancelTaskInput.taskId': bobsActiveTask.taskId,
      'RetryTaskInput.taskId': 'matrix-bob-failed',
      'Query.node.id': world.nodeSamples.get('App'),
      // The market-source mutations (admins only) name the active source: adding it again is a
      // CONFLICT, removing it is refused, selecting it again changes nothing for later cases.
      baseUrl: 'https://market.example',
      // Webhooks (admins only): an admin's addWebhook succeeds (its deliveries to a closed port are
      // retried in the background); removeWebhook is refused with VALIDATION (not a webhook id).
      url: 'http://127.0.0.1:9/matrix-hook',
      events: ['TASK_FINISHED'],
      webhookId: 'wh_matrix',
      // Not a delivery id: an admin's redeliverWebhookDelivery is refused with VALIDATION, anyone else's FORBIDDEN.
      deliveryId: 'not-a-delivery',
      nsfw: false,
      // Not a file: an admin's upload is refused with VALIDATION, anyone else's with FORBIDDEN.
      'Mutation.uploadChart.chart': 'not-a-file',
    };
  });

  afterAll(async () => {
    await Promise.all(Object.values(world.ws ?? {}).map((session) => session.close()));
  });

  // The servers run side by side; each one's cases in order (mutations after reads, bob's after alice's).
  describe.sequential('cases', () => {
    test.each(FIELDS.filter((each) => each.root === 'Query'))('Query.$name', async (target) => {
      const rule = ruleOf(target);
      expect(rule, `Query.${target.name} has no rule in src/auth/access-rules.ts`).toBeDefined();
      const problems: string[] = [];
      // node's sample id is an App's (Query.node.id).
      const members = target.name === 'node' ? new Set(['App']) : undefined;
      const plain = builder.build(target, world.samples, undefined, members);
      const namesUsers = userIdArgument(target.field) !== null;
      const variants: [string | undefined, Operation][] = [[undefined, plain]];
      if (namesUsers) variants.push(['bob', builder.build(target, world.samples, 'bob')]);
      const aliceAsAdminSees =
        namesUsers && rule === 'own-data'
          ? await run(world, 'admin', 'http', builder.build(target, world.samples, 'alice'))
          : null;
      if (aliceAsAdminSees?.errors.length) problems.push(`an admin naming alice is refused: ${show(aliceAsAdminSees)}`);
      for (const transport of TRANSPORTS) {
        const anonymous = await run(world, 'anonymous', transport, plain);
        if (!refusedUnauthenticated(anonymous)) {
          problems.push(`${transport} anonymous ${plain.label}: not refused: ${show(anonymous)}`);
        }
        for (const principal of USERS) {
          for (const [naming, operation] of variants) {
            const outcome = await run(world, principal, transport, operation);
            const read = { rule: rule as AccessRule, principal, field: target.name, outcome, naming, namesUsers };
            for (const problem of readProblems(world, { ...read, aliceAsAdminSees })) {
              problems.push(`${transport} ${principal} ${operation.label}: ${problem}`);
            }
          }
        }
      }
      expect(problems, world.label).toEqual([]);
    });

    test("node(id:) of every Node type: another user's object is null; catalogue objects are everyone's", async () => {
      const problems: string[] = [];
      const node = field('Query', 'node');
      for (const { type, owned } of nodeTypes(schema)) {
        const id = world.nodeSamples.get(type.name);
        if (!id) {
          problems.push(
            `no ${type.name} to ask for: add a root Query field that lists it (with a userId filter, if owned)`,
          );
          continue;
        }
        const operation = builder.build(
          node,
          { ...world.samples, 'Query.node.id': id },
          undefined,
          new Set([type.name]),
        );
        for (const transport of TRANSPORTS) {
          const where = `${transport} node(${type.name} ${owned ? "of bob's" : ''})`;
          const anonymous = await run(world, 'anonymous', transport, operation);
          if (!refusedUnauthenticated(anonymous)) problems.push(`${where} anonymous: not refused: ${show(anonymous)}`);
          for (const principal of USERS) {
            const outcome = await run(world, principal, transport, operation);
            const value = outcome.data?.node;
            if (outcome.errors.length) problems.push(`${where} ${principal}: errors ${show(outcome)}`);
            else if (owned && principal === 'alice') {
              if (value !== null) problems.push(`${where} alice: LEAK: ${JSON.stringify(value)}`);
            } else if (!value) problems.push(`${where} ${principal}: null`);
            else if (owned && !shows(world, 'bob', value)) problems.push(`${where} ${principal}: not bob's object`);
          }
        }
      }
      expect(problems, world.label).toEqual([]);
    });

    test.each(FIELDS.filter((each) => each.root === 'Mutation'))(
      "Mutation.$name, anonymously, as alice and as an admin acting as themselves: nothing of bob's changes",
      async (target) => {
        const rule = ruleOf(target);
        expect(rule, `Mutation.${target.name} has no rule in src/auth/access-rules.ts`).toBeDefined();
        const problems: string[] = [];
        const operation = builder.build(target, world.samples);
        const { db } = world.server.app;
        const bobsRows = await rowsOf(db, 'bob');
        const principals: Principal[] = [
          'anonymous',
          'alice',
          ...(rule === 'self' || rule === 'admin' ? ['admin' as const] : []),
        ];
        for (const transport of TRANSPORTS) {
          for (const principal of principals) {
            const outcome = await run(world, principal, transport, operation);
            const where = `${transport} ${principal} ${operation.label}`;
            if (principal === 'anonymous') {
              if (!refusedUnauthenticated(outcome)) problems.push(`${where}: not refused: ${show(outcome)}`);
            } else if (rule === 'admin' && principal !== 'admin') {
              if (!forbidden(outcome, target.name)) problems.push(`${where}: not FORBIDDEN: ${show(outcome)}`);
            } else if (rule !== 'admin') {
              for (const problem of confinedProblems(world, principal, target.name, outcome)) {
                problems.push(`${where}: ${problem}`);
              }
              // An own-data mutation names bob's object itself (his task): refused as not there.
              const typename = (outcome.data?.[target.name] as { __typename?: string } | null)?.__typename;
              if (rule === 'own-data' && typename !== 'NotFoundError' && typename !== 'ForbiddenError') {
                problems.push(`${where}: not refused (NOT_FOUND or FORBIDDEN): ${show(outcome)}`);
              }
            }
            if ((await rowsOf(db, 'bob')) !== bobsRows) problems.push(`${where}: CHANGED bob's rows`);
          }
        }
        expect(problems, world.label).toEqual([]);
      },
    );

    test.each(FIELDS.filter((each) => each.root === 'Mutation'))(
      'Mutation.$name on his own objects is not refused to bob (nor to an admin, where the rule lets admins act for others)',
      async (target) => {
        const rule = ruleOf(target);
        const problems: string[] = [];
        const operation = builder.build(target, world.samples);
        const principals: User[] =
          rule === 'admin' ? ['admin'] : ['bob', ...(rule === 'own-data' ? ['admin' as const] : [])];
        for (const transport of TRANSPORTS) {
          for (const principal of principals) {
            const outcome = await run(world, principal, transport, operation);
            const found = [
              ...allowedProblems(target.name, outcome),
              ...(principal === 'bob' ? confinedProblems(world, 'bob', target.name, outcome) : []),
            ];
            for (const problem of found) problems.push(`${transport} ${principal} ${operation.label}: ${problem}`);
          }
        }
        expect(problems, world.label).toEqual([]);
      },
    );

    test.each(FIELDS.filter((each) => each.root === 'Subscription'))(
      'Subscription.$name: anonymous is refused; a non-admin naming another user (or asking for an admin field) is FORBIDDEN',
      async (target) => {
        const rule = ruleOf(target);
        expect(rule, `Subscription.${target.name} has no rule in src/auth/access-rules.ts`).toBeDefined();
        const problems: string[] = [];
        const plain = builder.build(target, world.samples);
        const namingBob = userIdArgument(target.field) ? builder.build(target, world.samples, 'bob') : null;
        for (const transport of ['ws', 'sse'] as const) {
          const anonymous = await run(world, 'anonymous', transport, plain);
          if (!refusedUnauthenticated(anonymous)) {
            problems.push(`${transport} anonymous: not refused: ${show(anonymous)}`);
          }
          const refusedToAlice = rule === 'admin' ? plain : rule === 'authenticated' ? null : namingBob;
          if (refusedToAlice) {
            const outcome = await run(world, 'alice', transport, refusedToAlice);
            if (!forbidden(outcome, target.name)) {
              problems.push(`${transport} alice ${refusedToAlice.label}: not FORBIDDEN: ${show(outcome)}`);
            }
          }
        }
        expect(problems, world.label).toEqual([]);
      },
    );

    test("subscriptions: every user receives their own events and never another user's", async () => {
      // Fields whose events belong to users (an admin-only field is refused to users above).
      const subscriptions = FIELDS.filter(
        (each) => each.root === 'Subscription' && (ruleOf(each) === 'own-data' || ruleOf(each) === 'self'),
      );
      const lists: { key: string; user: User; carriesChartRepo: boolean; list: Received[] }[] = [];
      const disposers: (() => void)[] = [];
      try {
        for (const user of USERS) {
          for (const target of subscriptions) {
            const operation = builder.build(target, world.samples);
            for (const transport of ['ws', 'sse'] as const) {
              const list: Received[] = [];
              const carriesChartRepo = operation.query.includes('chartRepo');
              lists.push({ key: `${user} ${transport} ${target.name}`, user, carriesChartRepo, list });
              disposers.push(
                transport === 'ws'
                  ? world.ws[user].subscribe(operation, list)
                  : await sseSubscription(world.server.url, world.credentials[user], operation, list),
              );
            }
          }
        }
        /** Until each subscription `which` picks has received something with one of `markers`. */
        const waitUntil = (which: (each: (typeof lists)[number]) => boolean, markers: string[], what: string) =>
          waitFor(async () => {
            const wanted = new Set(markers);
            const missing = lists.filter(
              (each) => which(each) && !each.list.some(({ value }) => markersIn(value.data, wanted).size),
            );
            return missing.length ? undefined : true;
          }, `${what} (${world.label})`);
        const changeChartRepo = (owner: string) =>
          world.chartRepo.setStatus(`${owner}/${SOURCE}`, { apps: [{ name: chartApp(owner, 2), state: 'new' }] });

        // Live: every subscription has had an event (old rows touched and announced again) before anything changes.
        let announced = 0;
        await waitFor(async () => {
          if (lists.every(({ list }) => list.length > 0)) return true;
          // Each announcement reaches every subscriber: not more often than the events take to arrive.
          if (Date.now() - announced > 250) {
            announced = Date.now();
            for (const owner of OWNERS) await announceRowsOf(world.server, owner);
          }
          return undefined;
        }, `every subscription to be live (${world.label})`);

        // bob changes his data (an install, his credential pushed again, his chart-repo status); he
        // and the admin see it. (A new user-owned subscription whose events none of these cause
        // needs its change here.)
        const asBob = world.credentials.bob;
        succeeded(await overHttp(world.server.url, asBob, installOf('ghost', '5.104.2')));
        succeeded(await overHttp(world.server.url, asBob, resendOf('rocketchat-license')));
        changeChartRepo('bob');
        const bobsChanges = ['ghost', 'rocketchat', chartApp('bob', 2)];
        const bobMaySee = (each: (typeof lists)[number]) => each.user !== 'alice';
        await waitUntil(bobMaySee, bobsChanges, "bob's changes to reach bob and the admin");
        await waitUntil((each) => bobMaySee(each) && each.carriesChartRepo, [chartApp('bob', 2)], "bob's chart repo");

        // Then alice changes hers: once her own events arrived, bob's would have been before them.
        const asAlice = world.credentials.alice;
        succeeded(await overHttp(world.server.url, asAlice, installOf('mastodon', '4.3.2')));
        succeeded(await overHttp(world.server.url, asAlice, purchaseOf('actual-budget')));
        changeChartRepo('alice');
        const aliceMaySee = (each: (typeof lists)[number]) => each.user !== 'bob';
        await waitUntil(aliceMaySee, ['mastodon', 'actual-budget', chartApp('alice', 2)], "alice's changes to arrive");
        await waitUntil((each) => aliceMaySee(each) && each.carriesChartRepo, [chartApp('alice', 2)], "alice's chart");

        const problems: string[] = [];
        for (const { key, user, list } of lists) {
          if (user === 'admin') continue;
          for (const { value } of list) {
            if (value.errors?.length) problems.push(`${key}: errors ${JSON.stringify(value.errors)}`);
            for (const leak of foreignIn(world, user, value.data)) problems.push(`${key}: LEAK: ${leak}`);
            const changes = markersIn(
              value.data,
              new Set(user === 'alice' ? bobsChanges : ['mastodon', 'actual-budget']),
            );
            if (changes.size) problems.push(`${key}: LEAK: ${[...changes].join(', ')}`);
          }
        }
        expect(problems, world.label).toEqual([]);
      } finally {
        for (const dispose of disposers) dispose();
      }
    });

    test('credentials that are not accepted are refused like none, on every transport', async () => {
      const problems: string[] = [];
      const viewer = builder.build(field('Query', 'viewer'), {});
      const forged = await mode.forged();
      for (const [what, credentials] of Object.entries(forged)) {
        for (const transport of TRANSPORTS) {
          let outcome: Outcome;
          if (transport === 'http') outcome = await overHttp(world.server.url, credentials, viewer);
          else if (transport === 'sse') outcome = await overSse(world.server.url, credentials, viewer);
          else {
            const session = new WsSession(world.server.url, credentials);
            outcome = await session.request(viewer);
            await session.close();
          }
          if (!refusedUnauthenticated(outcome)) problems.push(`${transport} ${what}: not refused: ${show(outcome)}`);
        }
      }
      if (modeName === 'gateway') {
        // The upgrade request's header is the identity; a user named in connectionParams is ignored.
        const session = new WsSession(world.server.url, {
          headers: world.credentials.alice.headers,
          connectionParams: CLAIMED_IN_PARAMS,
        });
        const outcome = await session.request(viewer);
        await session.close();
        if (JSON.stringify(outcome.data) !== JSON.stringify({ viewer: { isAdmin: false, userId: 'alice' } })) {
          problems.push(`ws alice with connectionParams naming ops: ${show(outcome)}`);
        }
      }
      expect(problems, world.label).toEqual([]);
    });
  });
});

/** Fails the test unless a mutation that sets up a case succeeded. */
function succeeded(outcome: Outcome): void {
  const result = Object.values(outcome.data ?? {})[0] as { __typename?: string } | undefined;
  expect(result?.__typename ?? show(outcome)).toMatch(/Success$/);
}

function installOf(appName: string, version: string): Operation {
  return {
    label: `installApp(${appName})`,
    query:
      'mutation ($input: InstallAppInput!) { installApp(input: $input) { __typename ... on Error { code message } } }',
    variables: { input: { sourceId: SOURCE, appName, version } },
  };
}

function resendOf(productId: string): Operation {
  return {
    label: `resendPaymentCredential(${productId})`,
    query:
      'mutation ($input: ResendPaymentCredentialInput!) { resendPaymentCredential(input: $input) { __typename ... on Error { code message } } }',
    variables: { input: { productId } },
  };
}

function purchaseOf(appId: string): Operation {
  return {
    label: `purchaseApp(${appId})`,
    query:
      'mutation ($input: PurchaseAppInput!) { purchaseApp(input: $input) { __typename ... on Error { code message } } }',
    variables: { input: { sourceId: SOURCE, appId } },
  };
}
