/**
 * The server processes of the G1 benchmark (bench/g1.ts), one per role (G1_ROLE), each on its own
 * event loop and pinned by the parent to the same core (the raw baseline is g1-raw-server.ts):
 *
 *  - `subject`: the real server, `buildApp` over DATABASE_URL (a fresh migrated SQLite file) with
 *    the demo data, local development mode (no token: every request is the local admin), log
 *    silent, mutation rate limit off. Before it reports ready, the task engine has finished the
 *    demo data's pending tasks (so the answers no longer change) and TASKS_USER has a full page
 *    of tasks (rows added through the server's own Prisma client).
 *  - `yoga`: stock `createYoga({ schema, context })`, no plugins, on node:http.
 *  - `mercurius`: Fastify + Mercurius with `jit: 1` (graphql-jit from a document's second run).
 *
 * The peers run the same schema (src/schema/index.ts) over the same services on the same SQLite
 * file (created as create-services.ts does, not started: the subject's engine alone runs tasks),
 * and build the context the subject's Yoga builds (src/app/graphql.ts): the viewer from the
 * request's headers, the resolver services, fresh loaders and a request id.
 */
import { randomUUID } from 'node:crypto';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import Fastify from 'fastify';
import { createYoga } from 'graphql-yoga';
import mercurius from 'mercurius';
import { buildApp } from '../src/app/build-app.js';
import { createServices, resolverServices } from '../src/app/create-services.js';
import { Authenticator } from '../src/auth/viewer.js';
import { createPrismaClient, type Db, prepareDatabase } from '../src/db/client.js';
import { type Config, loadConfig } from '../src/platform/config.js';
import { createLogger } from '../src/platform/logger.js';
import type { Context } from '../src/schema/builder.js';
import { schema } from '../src/schema/index.js';
import { createLoaders } from '../src/services/loaders.js';
import { type G1Request, type G1Role, type SubjectReady, TASKS_USER, TASKS_WANTED } from './g1-protocol.js';
import { cpuSample, failed, fdLimit, send, serve } from './lib/fanout-child.js';
import { g1ServerEnv } from './lib/server-config.js';

const SETTLE_TIMEOUT_MS = 60_000;

/** The configuration every role reads: an explicit environment, so stray AUTH_* variables cannot leave local mode. */
function benchConfig(demoData: boolean): Config {
  const databaseUrl = process.env.DATABASE_URL;
  if (!databaseUrl?.startsWith('file:')) throw new Error('DATABASE_URL must be a file: URL');
  return loadConfig(g1ServerEnv(databaseUrl, demoData));
}

function listen(server: Server): Promise<string> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve(`http://127.0.0.1:${(server.address() as AddressInfo).port}/graphql`));
  });
}

function closeServer(server: Server): Promise<void> {
  server.closeAllConnections();
  return new Promise((resolve) => server.close(() => resolve()));
}

/** Until the engine has run every pending task of the demo data (polled: it offers no completion event). */
async function settle(db: Db, engineRunning: () => number): Promise<number> {
  const started = performance.now();
  for (;;) {
    const active = await db.task.count({ where: { status: { in: ['PENDING', 'RUNNING'] } } });
    if (active === 0 && engineRunning() === 0) return performance.now() - started;
    if (performance.now() - started > SETTLE_TIMEOUT_MS) {
      throw new Error(`${active} demo tasks were still active after ${SETTLE_TIMEOUT_MS} ms`);
    }
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}

/** Finished install tasks of TASKS_USER, newer than the demo data's, up to TASKS_WANTED in all. */
async function addTasks(db: Db): Promise<number> {
  const existing = await db.task.count({ where: { userId: TASKS_USER } });
  const missing = Math.max(0, TASKS_WANTED - existing);
  const now = Date.now();
  const appNames = ['jellyfin', 'immich', 'ollama'];
  await db.task.createMany({
    data: Array.from({ length: missing }, (_, index) => {
      // Distinct times one second apart, later rows newer: insertion order and time agree.
      const createdAt = new Date(now - (missing - index) * 1000);
      return {
        taskId: `g1-task-${String(index).padStart(3, '0')}`,
        type: 'INSTALL',
        status: 'COMPLETED',
        userId: TASKS_USER,
        sourceId: 'market.olares',
        appName: appNames[index % appNames.length] as string,
        version: '1.0.0',
        progress: 100,
        metadata: { cfgType: 'app', envs: [] },
        createdAt,
        startedAt: createdAt,
        completedAt: new Date(createdAt.getTime() + 500),
      };
    }),
  });
  return missing;
}

async function startSubject(): Promise<void> {
  const config = benchConfig(true);
  const app = buildApp(config, { logger: createLogger('silent') });
  const { url } = await app.start(0);
  const settleMs = await settle(app.db, () => app.services.engine.running);
  const tasksAdded = await addTasks(app.db);
  const detail: SubjectReady = {
    settleMs,
    tasksAdded,
    tasksOfUser: await app.db.task.count({ where: { userId: TASKS_USER } }),
    catalogApps: await app.db.catalogApp.count(),
  };
  serve<G1Request>(async (request) => (request.type === 'cpu' ? cpuSample() : null), app.stop);
  send({ type: 'ready', url: new URL('/graphql', url).href, fdLimit: fdLimit(), pid: process.pid, detail });
}

/** The services and per-request context of the peers, as the subject builds them. */
async function peerContext(): Promise<{
  contextFor(headers: IncomingHttpHeaders | Headers): Promise<Context>;
  db: Db;
}> {
  const config = benchConfig(false);
  const logger = createLogger('silent');
  const db = createPrismaClient(config.databaseUrl);
  await prepareDatabase(db, config.databaseUrl);
  const services = resolverServices(createServices({ db, config, logger }));
  const authenticator = new Authenticator(config.auth);
  return {
    db,
    async contextFor(headers) {
      const viewer = await authenticator.fromHeaders(headers);
      const requestId = randomUUID();
      return {
        viewer,
        services,
        loaders: createLoaders(services),
        requestId,
      };
    },
  };
}

async function startYoga(): Promise<void> {
  const { contextFor, db } = await peerContext();
  const yoga = createYoga({ schema, context: ({ request }) => contextFor(request.headers) });
  const server = createServer(yoga);
  const url = await listen(server);
  serve<G1Request>(
    async (request) => (request.type === 'cpu' ? cpuSample() : null),
    async () => {
      await closeServer(server);
      await db.$disconnect();
    },
  );
  send({ type: 'ready', url, fdLimit: fdLimit(), pid: process.pid });
}

async function startMercurius(): Promise<void> {
  const { contextFor, db } = await peerContext();
  const app = Fastify({ logger: false });
  await app.register(mercurius, { schema, jit: 1, context: (request) => contextFor(request.headers) });
  await app.listen({ port: 0, host: '127.0.0.1' });
  const url = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}/graphql`;
  serve<G1Request>(
    async (request) => (request.type === 'cpu' ? cpuSample() : null),
    async () => {
      await app.close();
      await db.$disconnect();
    },
  );
  send({ type: 'ready', url, fdLimit: fdLimit(), pid: process.pid });
}

const STARTERS: Record<Exclude<G1Role, 'raw'>, () => Promise<void>> = {
  subject: startSubject,
  yoga: startYoga,
  mercurius: startMercurius,
};

const role = process.env.G1_ROLE as keyof typeof STARTERS | undefined;
const start = role ? STARTERS[role] : undefined;
if (start) start().catch(failed);
else failed(new Error(`G1_ROLE must be one of ${Object.keys(STARTERS).join(', ')} (got ${role})`));
