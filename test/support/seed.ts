import { randomUUID } from 'node:crypto';
import { test } from 'vitest';
import { createPrismaClient, type Db } from '../../src/db/client.js';
import type { AppRow, CatalogAppRow, HistoryRow, MarketSourceRow, PaymentRow, TaskRow } from '../../src/db/models.js';
import { appKeyString } from '../../src/domain/app-key.js';
import { isFailedFirstInstall } from '../../src/domain/app-stage.js';
import { catalogueSearchText } from '../../src/domain/catalogue-entry.js';
import { createTestDatabase, type DatabaseKind } from './databases.js';
import { type StartOptions, startTestServer, type TestServer } from './server.js';

/**
 * Seed factories: each test writes the rows it is about, through Prisma, instead of leaning on the
 * demo data or on what an earlier test left behind (after Hive's test kit).
 *
 *   const alice = seed.user('alice');
 *   await seed.catalogApp({ name: 'jellyfin', versions: ['1.2.0'] });
 *   const jellyfin = await alice.app({ appName: 'jellyfin', state: 'running' });
 *   await jellyfin.task({ status: 'COMPLETED' });
 *   await alice.task({ appName: 'navidrome', type: 'UNINSTALL' }); // no app row: uninstalled
 *   await alice.payment({ appId: 'plex', status: 'purchased' });
 *
 * Rows get increasing times from one clock (a minute apart, ending before `now`), so "newest
 * first" follows the order of the seeding calls.
 */

export const REMOTE_SOURCE = 'market.olares';

export interface CatalogAppInput {
  name: string;
  sourceId?: string;
  title?: string;
  description?: string;
  /** Newest first; the first is the current version. @default ['1.0.0'] */
  versions?: string[];
  /** @default ['Utilities'] */
  categories?: string[];
  /** USDC price: makes the app paid, with product `<name>-license`. */
  price?: string;
  /** @default 'app' */
  cfgType?: string;
  /** The entrances of its manifest (an entry lists them); none unless given. */
  entrances?: { name: string; title?: string }[];
}

export interface SourceInput {
  sourceId: string;
  type: 'remote' | 'local';
  title?: string;
  priority?: number;
}

export interface AppInput {
  appName: string;
  /** The app-service state (`running`, `stopped`, `installFailed`, `downloading`, …). */
  state: string;
  sourceId?: string;
  /** @default '1.0.0' */
  version?: string;
  reason?: string;
  progress?: string;
  /** A clone's: the app it is a copy of. */
  rawAppName?: string;
}

export interface TaskInput {
  /** Given by `AppSeed.task`. */
  appName?: string;
  sourceId?: string;
  version?: string;
  /** @default 'COMPLETED' */
  status?: 'PENDING' | 'RUNNING' | 'COMPLETED' | 'FAILED' | 'CANCELED';
  /** @default 'INSTALL' */
  type?: 'INSTALL' | 'UNINSTALL' | 'UPGRADE' | 'CLONE';
  taskId?: string;
  error?: string;
}

/** Payments in the states the API names: `purchased` (paid and confirmed), `signed` (awaiting payment). */
const PAYMENT_STATES = {
  purchased: {
    developerSync: 'completed',
    larePassSync: 'completed',
    signatureStatus: 'required_and_signed',
    paymentStatus: 'developer_confirmed',
    txHash: '0xseed0001',
  },
  signed: {
    developerSync: 'not_started',
    larePassSync: 'completed',
    signatureStatus: 'required_and_signed',
    paymentStatus: 'notification_sent',
  },
} as const;

export interface PaymentInput {
  appId: string;
  status: keyof typeof PAYMENT_STATES;
  sourceId?: string;
}

export interface HistoryInput {
  type: string;
  app?: string;
  message?: string;
}

const MINUTE = 60_000;

export class Seeder {
  private tick = 0;
  private taskCount = 0;
  /** Keeps the task ids of two seeders of one database apart. */
  private readonly run = randomUUID().slice(0, 8);

  constructor(
    readonly db: Db,
    private readonly now = new Date(),
  ) {}

  /** The next time of the seeding clock. */
  time(): Date {
    this.tick += 1;
    return new Date(this.now.getTime() - (10_000 - this.tick) * MINUTE);
  }

  nextTaskId(): string {
    this.taskCount += 1;
    return `seed-${this.run}-${String(this.taskCount).padStart(4, '0')}`;
  }

  user(userId: string): UserSeed {
    return new UserSeed(this, userId);
  }

  /**
   * A market source; one that exists already (the default sources every server creates at start)
   * is kept as it is.
   */
  source(input: SourceInput): Promise<MarketSourceRow> {
    return this.db.marketSource.upsert({
      where: { sourceId: input.sourceId },
      update: {},
      create: {
        sourceId: input.sourceId,
        type: input.type,
        title: input.title ?? input.sourceId,
        baseUrl: input.type === 'remote' ? null : 'file://',
        priority: input.priority ?? (input.type === 'remote' ? 100 : 50),
        activeRemote: input.type === 'remote' ? 'remote' : null,
      },
    });
  }

  /** The remote source (`market.olares`) that the catalogue apps and installs name by default. */
  remoteSource(): Promise<MarketSourceRow> {
    return this.source({ sourceId: REMOTE_SOURCE, type: 'remote' });
  }

  /** A catalogue app, shaped like the ones the chart repo syncs. */
  catalogApp(input: CatalogAppInput): Promise<CatalogAppRow> {
    const { name, versions = ['1.0.0'], categories = ['Utilities'], cfgType = 'app' } = input;
    const title = input.title ?? name;
    const description = input.description ?? `${title}, seeded`;
    const version = versions[0] ?? '1.0.0';
    const price = input.price
      ? {
          developer: 'seed-developer',
          paid: {
            product_id: `${name}-license`,
            price: [{ chain: 'optimism', token_symbol: 'USDC', receive_wallet: '0x01', product_price: input.price }],
            description: [{ lang: 'en', title: `${title} licence`, description: 'One-time purchase' }],
          },
        }
      : undefined;
    return this.db.catalogApp.create({
      data: {
        sourceId: input.sourceId ?? REMOTE_SOURCE,
        appId: name,
        name,
        version,
        versions,
        cfgType,
        title,
        description,
        searchText: catalogueSearchText(name, title, description),
        paid: price !== undefined,
        ...(price ? { price } : {}),
        entry: {
          id: name,
          name,
          appID: name,
          cfgType,
          version,
          title: { 'en-US': title },
          description: { 'en-US': description },
          categories,
          developer: 'seed-developer',
          versionHistory: versions.map((v) => ({ appName: name, version: v })),
          ...(input.entrances ? { entrances: input.entrances } : {}),
        },
        categories: { create: categories.map((category) => ({ category })) },
      },
    });
  }
}

export class UserSeed {
  constructor(
    private readonly seeder: Seeder,
    readonly userId: string,
  ) {}

  /** The app-state row of one of this user's apps, as the collector writes it. */
  async app(input: AppInput): Promise<AppSeed> {
    const installing = ['downloading', 'installing', 'pending'].includes(input.state);
    // A failed first install left no version; any other failure (an upgrade's) an installed app.
    const unfinished = installing || isFailedFirstInstall(input.state);
    const version = input.version ?? '1.0.0';
    const row = await this.seeder.db.appState.create({
      data: {
        userId: this.userId,
        sourceId: input.sourceId ?? REMOTE_SOURCE,
        appName: input.appName,
        rawAppName: input.rawAppName ?? null,
        title: input.appName,
        cfgType: 'app',
        installedVersion: unfinished ? null : version,
        targetVersion: version,
        state: input.state,
        progress: input.progress ?? null,
        reason: input.reason ?? null,
        opType: 'install',
        eventTime: this.seeder.time(),
      },
    });
    return new AppSeed(this, row);
  }

  async payment(input: PaymentInput): Promise<PaymentRow> {
    const at = this.seeder.time();
    return this.seeder.db.payment.create({
      data: {
        userId: this.userId,
        sourceId: input.sourceId ?? REMOTE_SOURCE,
        appId: input.appId,
        appName: input.appId,
        productId: `${input.appId}-license`,
        developerName: 'seed-developer',
        paymentNeed: 'required',
        ...PAYMENT_STATES[input.status],
        jws: `seed.jws.${this.userId}-${input.appId}`,
        ...(input.status === 'purchased' ? { vc: `seed-vc-${this.userId}-${input.appId}` } : {}),
        createdAt: at,
        updatedAt: at,
      },
    });
  }

  /** A task of one of this user's apps; an active one (PENDING, RUNNING) holds the app's one active-task slot. */
  task(input: TaskInput & { appName: string }): Promise<TaskRow> {
    const key = { userId: this.userId, sourceId: input.sourceId ?? REMOTE_SOURCE, appName: input.appName };
    const status = input.status ?? 'COMPLETED';
    const active = status === 'PENDING' || status === 'RUNNING';
    const createdAt = this.seeder.time();
    return this.seeder.db.task.create({
      data: {
        ...key,
        taskId: input.taskId ?? this.seeder.nextTaskId(),
        type: input.type ?? 'INSTALL',
        status,
        version: input.version ?? '1.0.0',
        activeKey: active ? appKeyString(key) : null,
        progress: status === 'COMPLETED' ? 100 : 0,
        metadata: { cfgType: 'app', envs: [], appId: input.appName },
        error: input.error ?? null,
        createdAt,
        startedAt: status === 'PENDING' ? null : createdAt,
        completedAt: active ? null : createdAt,
      },
    });
  }

  history(input: HistoryInput): Promise<HistoryRow> {
    return this.seeder.db.historyRecord.create({
      data: {
        type: input.type,
        message: input.message ?? `${input.type} ${input.app ?? ''}`.trim(),
        app: input.app ?? null,
        userId: this.userId,
        time: this.seeder.time(),
      },
    });
  }
}

export class AppSeed {
  constructor(
    private readonly owner: UserSeed,
    readonly row: AppRow,
  ) {}

  /** A task of this app (see `UserSeed.task`). */
  task(input: TaskInput = {}): Promise<TaskRow> {
    const { sourceId, appName, targetVersion } = this.row;
    return this.owner.task({ sourceId, appName, version: targetVersion ?? '1.0.0', ...input });
  }
}

/** Seed factories writing into `db`. */
export function seed(db: Db, now = new Date()): Seeder {
  return new Seeder(db, now);
}

export interface SeededServerFixtures {
  /** A real server of its own for this test, over an empty database (no demo data). */
  server: TestServer;
  /** Factories writing into that server's database. */
  seed: Seeder;
}

export interface SeededServerOptions extends Omit<StartOptions, 'database'> {
  /**
   * Rows to write before the server starts, for what the server reads only at start (the state
   * collector's view of apps and tasks). @default none
   */
  preseed?: (seed: Seeder) => Promise<unknown>;
}

/**
 * A real server over an empty database of its own (no demo data), with factories writing into it.
 * Its `stop()` also drops the database. For a server that a file's tests share, each test seeding
 * rows under names of its own (`seededTest` gives each test a server instead).
 */
export async function startSeededServer(
  kind: DatabaseKind,
  { preseed, ...options }: SeededServerOptions = {},
): Promise<SeededServerFixtures> {
  const database = await createTestDatabase(kind);
  try {
    if (preseed) {
      const db = createPrismaClient(database.url);
      await preseed(seed(db)).finally(() => db.$disconnect());
    }
    // No demo data, and no bundled catalogue either: the test's own rows are the only ones.
    const env = { DEMO_DATA: '0', BUNDLED_CATALOGUE_FILE: 'off', ...options.env };
    const started = await startTestServer(kind, { ...options, database, env });
    const server: TestServer = { ...started, stop: () => started.stop().finally(() => database.drop()) };
    return { server, seed: seed(server.app.db) };
  } catch (error) {
    await database.drop();
    throw error;
  }
}

/**
 * `test` with a `server` and a `seed` fixture: each test that names them gets its own server on
 * its own empty database (no demo data), so its rows are the only ones there, whatever ran
 * before or beside it.
 */
export function seededTest(kind: DatabaseKind, options: SeededServerOptions = {}) {
  return test.extend<SeededServerFixtures>({
    // biome-ignore lint/correctness/noEmptyPattern: vitest reads fixture dependencies from the pattern
    server: async ({}, use) => {
      const { server } = await startSeededServer(kind, options);
      try {
        await use(server);
      } finally {
        await server.stop();
      }
    },
    seed: async ({ server }, use) => {
      await use(seed(server.app.db));
    },
  });
}
