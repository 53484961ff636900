import { simulatedEntrance } from '../domain/app-entrance.js';
import { appKeyString } from '../domain/app-key.js';
import { catalogueSearchText } from '../domain/catalogue-entry.js';
import type { Db } from './client.js';
import { REMOTE_SOURCE } from './default-sources.js';
import { DEMO_LOCAL_APPS, type DemoApp } from './demo-catalogue.js';
import { isUniqueViolation } from './hot-path-sql.js';
import type { Prisma } from './models.js';

/**
 * Demo data for the embedded default: seeded once into an empty database (DEMO_DATA=1), so that
 * GraphiQL and the dashboard show something real on a fresh clone. Deterministic: the same
 * rows every time, relative to `now`.
 */

/** A catalogue row of a local source's demo app. */
function catalogRow(sourceId: string, app: DemoApp) {
  return {
    sourceId,
    appId: app.name,
    name: app.name,
    version: app.versions[0] as string,
    versions: app.versions,
    cfgType: app.cfgType ?? 'app',
    title: app.title,
    description: app.description,
    searchText: catalogueSearchText(app.name, app.title, app.description),
    entry: {
      id: app.name,
      name: app.name,
      appID: app.name,
      cfgType: app.cfgType ?? 'app',
      version: app.versions[0],
      title: { 'en-US': app.title },
      description: { 'en-US': app.description },
      categories: app.categories,
      developer: 'demo-developer',
      versionHistory: app.versions.map((version) => ({ appName: app.name, version })),
    },
  };
}

interface DemoInstall {
  userId: string;
  appName: string;
  version: string;
  state: string;
  progress?: string;
  reason?: string;
  opType: string;
}

const INSTALLS: DemoInstall[] = [
  { userId: 'alice', appName: 'jellyfin', version: '1.2.0', state: 'running', opType: 'install' },
  { userId: 'alice', appName: 'immich', version: '1.120.1', state: 'running', opType: 'install' },
  { userId: 'alice', appName: 'ollama', version: '0.4.7', state: 'stopped', opType: 'stop' },
  {
    userId: 'alice',
    appName: 'nextcloud',
    version: '30.0.2',
    state: 'installFailed',
    reason: 'missing env value NEXTCLOUD_ADMIN_PASSWORD',
    opType: 'install',
  },
  { userId: 'bob', appName: 'gitea', version: '1.22.4', state: 'running', opType: 'install' },
  {
    userId: 'bob',
    appName: 'code-server',
    version: '4.95.3',
    state: 'downloading',
    progress: '42.5',
    opType: 'install',
  },
  { userId: 'bob', appName: 'grafana', version: '11.3.1', state: 'running', opType: 'install' },
  { userId: 'admin', appName: 'vaultwarden', version: '1.32.5', state: 'running', opType: 'install' },
  {
    userId: 'admin',
    appName: 'home-assistant',
    version: '2024.12.1',
    state: 'installing',
    progress: '80',
    opType: 'install',
  },
  { userId: 'admin', appName: 'syncthing', version: '1.28.1', state: 'running', opType: 'upgrade' },
];

const MINUTE = 60_000;

type Tx = Prisma.TransactionClient;
/** The time `minutesAgo` minutes before the seeding's `now`. */
type Clock = (minutesAgo: number) => Date;

/**
 * Seeds the demo rows when the database has no app state and no task yet (the default sources,
 * created at every start, and a synced catalogue do not count). Runs after the first sync of the
 * bundled catalogue, whose apps the demo users have installed. Returns whether it seeded.
 */
export async function seedDemoData(db: Db, now = new Date()): Promise<boolean> {
  if ((await db.appState.count()) > 0 || (await db.task.count()) > 0) return false;
  const at: Clock = (minutesAgo) => new Date(now.getTime() - minutesAgo * MINUTE);

  try {
    await db.$transaction(async (tx) => {
      await seedLocalCatalogue(tx);
      const catalogue = await tx.catalogApp.findMany({
        where: { sourceId: REMOTE_SOURCE },
        select: { name: true, title: true, cfgType: true },
      });
      for (const [index, install] of INSTALLS.entries()) {
        const app = catalogue.find((candidate) => candidate.name === install.appName);
        await seedInstall(tx, install, app, index, at);
      }
      await seedUninstall(tx, at);
      await seedPayments(tx, at);
    });
  } catch (error) {
    // Several instances starting together on one empty database: the first to commit seeds it,
    // the others' transactions meet its rows (unique ids) and roll back whole.
    if (isUniqueViolation(error)) return false;
    throw error;
  }
  return true;
}

async function seedLocalCatalogue(tx: Tx): Promise<void> {
  for (const { sourceId, app } of DEMO_LOCAL_APPS) {
    await tx.catalogApp.create({
      data: {
        ...catalogRow(sourceId, app),
        categories: { create: app.categories.map((category) => ({ category })) },
      },
    });
  }
}

/** What one entry of INSTALLS becomes: its times, ids and whether it has finished. */
interface InstallFacts {
  install: DemoInstall;
  /** Its catalogue entry, as the bundled catalogue's sync wrote it (absent: none). */
  app: { title: string | null; cfgType: string } | undefined;
  opId: string;
  taskId: string;
  type: 'INSTALL' | 'UPGRADE';
  failed: boolean;
  active: boolean;
  createdAt: Date;
  eventTime: Date;
}

/** The app state, task and history records of the `index`th entry of INSTALLS. */
async function seedInstall(
  tx: Tx,
  install: DemoInstall,
  app: InstallFacts['app'],
  index: number,
  at: Clock,
): Promise<void> {
  const facts: InstallFacts = {
    install,
    app,
    opId: `demo-op-${index + 1}`,
    taskId: `demo-${String(index + 1).padStart(4, '0')}`,
    type: install.opType === 'upgrade' ? 'UPGRADE' : 'INSTALL',
    failed: install.state.endsWith('Failed'),
    active: ['downloading', 'installing'].includes(install.state),
    createdAt: at(125 - index * 5),
    eventTime: at(120 - index * 5),
  };
  await seedAppState(tx, facts);
  await seedInstallTask(tx, facts);
  await seedInstallHistory(tx, facts);
}

async function seedAppState(tx: Tx, { install, app, opId, failed, active, eventTime }: InstallFacts): Promise<void> {
  await tx.appState.create({
    data: {
      userId: install.userId,
      sourceId: REMOTE_SOURCE,
      appName: install.appName,
      title: app?.title ?? install.appName,
      cfgType: app?.cfgType ?? 'app',
      // An app still being installed, or whose install failed, has no installed version yet.
      installedVersion: failed || active ? null : install.version,
      targetVersion: install.version,
      state: install.state,
      progress: install.progress ?? null,
      reason: install.reason ?? null,
      opType: install.opType,
      opId,
      eventTime,
      // What the simulated app service would have reported: an installed app has its entrance.
      ...(failed || active
        ? {}
        : {
            entrances: [
              simulatedEntrance(install.userId, install.appName, app?.title ?? install.appName, install.state),
            ] as unknown as Prisma.InputJsonValue,
          }),
    },
  });
}

async function seedInstallTask(tx: Tx, facts: InstallFacts): Promise<void> {
  const { install, app, opId, taskId, type, failed, active, createdAt, eventTime } = facts;
  const key = { userId: install.userId, sourceId: REMOTE_SOURCE, appName: install.appName };
  await tx.task.create({
    data: {
      taskId,
      type,
      // Operations still in progress are seeded as PENDING tasks: the task engine picks them
      // up at start and runs them against the app service, so the demo is live from the
      // first second. They hold the one-active-task slot of their app like any task.
      status: failed ? 'FAILED' : active ? 'PENDING' : 'COMPLETED',
      activeKey: active ? appKeyString(key) : null,
      ...key,
      version: install.version,
      opId: active ? null : opId,
      progress: failed || active ? 0 : 100,
      metadata: { cfgType: app?.cfgType ?? 'app', envs: [], appId: install.appName },
      error: failed
        ? `install of ${install.appName} failed on the app service (installFailed): ${install.reason}`
        : null,
      createdAt,
      startedAt: active ? null : createdAt,
      completedAt: active ? null : eventTime,
    },
  });
}

/** The action record of the request and, once it has finished, the system record of its outcome. */
async function seedInstallHistory(tx: Tx, facts: InstallFacts): Promise<void> {
  const { install, taskId, type, failed, active, createdAt, eventTime } = facts;
  const verb = type.toLowerCase();
  const record = { app: install.appName, userId: install.userId };
  await tx.historyRecord.create({
    data: {
      type: type === 'UPGRADE' ? 'ACTION_UPGRADE' : 'ACTION_INSTALL',
      message: `${verb} ${install.appName}`,
      ...record,
      time: createdAt,
      extended: { taskId, status: 'PENDING' },
    },
  });
  if (active) return;
  await tx.historyRecord.create({
    data: {
      type: failed ? 'SYSTEM_INSTALL_FAILED' : 'SYSTEM_INSTALL_SUCCEED',
      message: `${verb} ${install.appName} ${failed ? 'failed' : 'completed'}`,
      ...record,
      time: eventTime,
      extended: { taskId, status: failed ? 'FAILED' : 'COMPLETED' },
    },
  });
}

/** One finished uninstall, so every task type the dashboard filters on has an example. */
async function seedUninstall(tx: Tx, at: Clock): Promise<void> {
  await tx.task.create({
    data: {
      taskId: 'demo-0100',
      type: 'UNINSTALL',
      status: 'COMPLETED',
      userId: 'bob',
      sourceId: REMOTE_SOURCE,
      appName: 'navidrome',
      version: '0.53.3',
      progress: 100,
      metadata: { cfgType: 'app', envs: [], uninstall: { all: false, deleteData: false } },
      createdAt: at(300),
      startedAt: at(300),
      completedAt: at(299),
    },
  });
  await tx.historyRecord.create({
    data: {
      type: 'ACTION_UNINSTALL',
      message: 'uninstall navidrome',
      app: 'navidrome',
      userId: 'bob',
      time: at(300),
      extended: { taskId: 'demo-0100' },
    },
  });
}

/** Payments: alice bought Plex; bob signed for ComfyUI and is about to pay. */
async function seedPayments(tx: Tx, at: Clock): Promise<void> {
  const payment = {
    sourceId: REMOTE_SOURCE,
    developerName: 'demo-developer',
    paymentNeed: 'required',
    larePassSync: 'completed',
    signatureStatus: 'required_and_signed',
  };
  await tx.payment.create({
    data: {
      ...payment,
      userId: 'alice',
      appId: 'plex',
      appName: 'plex',
      productId: 'plex-license',
      developerSync: 'completed',
      paymentStatus: 'developer_confirmed',
      jws: 'demo.jws.alice-plex',
      vc: 'demo-vc-alice-plex',
      txHash: '0xdemo0001',
      createdAt: at(600),
      updatedAt: at(590),
    },
  });
  await tx.payment.create({
    data: {
      ...payment,
      userId: 'bob',
      appId: 'comfyui',
      appName: 'comfyui',
      productId: 'comfyui-license',
      developerSync: 'not_started',
      paymentStatus: 'notification_sent',
      jws: 'demo.jws.bob-comfyui',
      createdAt: at(30),
      updatedAt: at(25),
    },
  });
}
