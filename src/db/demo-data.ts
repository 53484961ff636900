import type { Db } from './client.js';

/**
 * Demo data for the embedded default: seeded once into an empty database (DEMO_DATA=1), so that
 * GraphiQL and the dashboard show something real on a fresh clone. Deterministic: the same
 * rows every time, relative to `now`.
 */

export const DEMO_USERS = ['admin', 'alice', 'bob'] as const;

const REMOTE_SOURCE = 'market.olares';

export const DEMO_SOURCES = [
  {
    sourceId: REMOTE_SOURCE,
    title: 'Olares Market',
    type: 'remote',
    baseUrl: 'https://appstore-server-prod.bttcdn.com',
    description: 'The official remote catalogue',
    priority: 100,
    activeRemote: 'remote',
  },
  {
    sourceId: 'upload',
    title: 'Uploaded charts',
    type: 'local',
    baseUrl: 'file://',
    description: 'Charts uploaded by users',
    priority: 50,
    activeRemote: null,
  },
  {
    sourceId: 'studio',
    title: 'Studio',
    type: 'local',
    baseUrl: 'file://',
    description: 'Apps built in Studio',
    priority: 50,
    activeRemote: null,
  },
  {
    sourceId: 'cli',
    title: 'CLI',
    type: 'local',
    baseUrl: 'file://',
    description: 'Apps installed from the command line',
    priority: 50,
    activeRemote: null,
  },
];

interface DemoApp {
  name: string;
  title: string;
  description: string;
  categories: string[];
  versions: string[];
  /** USDC price for paid apps. */
  price?: string;
  cfgType?: string;
}

const APPS: DemoApp[] = [
  {
    name: 'jellyfin',
    title: 'Jellyfin',
    description: 'Free media system to manage and stream your media',
    categories: ['Entertainment', 'Media'],
    versions: ['1.2.0', '1.1.3', '1.1.0'],
  },
  {
    name: 'immich',
    title: 'Immich',
    description: 'Self-hosted photo and video backup',
    categories: ['Productivity', 'Media'],
    versions: ['1.120.1', '1.119.0'],
  },
  {
    name: 'nextcloud',
    title: 'Nextcloud',
    description: 'Files, calendar and contacts in one place',
    categories: ['Productivity'],
    versions: ['30.0.2', '29.0.8'],
  },
  {
    name: 'vaultwarden',
    title: 'Vaultwarden',
    description: 'Password manager compatible with Bitwarden clients',
    categories: ['Utilities', 'Security'],
    versions: ['1.32.5', '1.32.0'],
  },
  {
    name: 'ollama',
    title: 'Ollama',
    description: 'Run large language models locally',
    categories: ['AI'],
    versions: ['0.5.1', '0.4.7', '0.4.0'],
  },
  {
    name: 'openwebui',
    title: 'Open WebUI',
    description: 'Chat interface for local language models',
    categories: ['AI'],
    versions: ['0.4.8', '0.4.5'],
  },
  {
    name: 'comfyui',
    title: 'ComfyUI',
    description: 'Node-based image generation workflows',
    categories: ['AI', 'Creativity'],
    versions: ['0.3.7', '0.3.4'],
    price: '9.99',
  },
  {
    name: 'stable-diffusion',
    title: 'Stable Diffusion WebUI',
    description: 'Image generation in the browser',
    categories: ['AI', 'Creativity'],
    versions: ['1.10.1', '1.9.4'],
  },
  {
    name: 'gitea',
    title: 'Gitea',
    description: 'Lightweight self-hosted Git service',
    categories: ['Developer Tools'],
    versions: ['1.22.4', '1.22.0'],
  },
  {
    name: 'code-server',
    title: 'code-server',
    description: 'VS Code in the browser',
    categories: ['Developer Tools'],
    versions: ['4.95.3', '4.93.1'],
  },
  {
    name: 'n8n',
    title: 'n8n',
    description: 'Workflow automation with a visual editor',
    categories: ['Productivity', 'Developer Tools'],
    versions: ['1.70.1', '1.68.0'],
  },
  {
    name: 'home-assistant',
    title: 'Home Assistant',
    description: 'Open source home automation',
    categories: ['Lifestyle'],
    versions: ['2024.12.1', '2024.11.3'],
  },
  {
    name: 'plex',
    title: 'Plex',
    description: 'Stream movies, shows and music',
    categories: ['Entertainment', 'Media'],
    versions: ['1.41.3', '1.41.0'],
    price: '4.99',
  },
  {
    name: 'navidrome',
    title: 'Navidrome',
    description: 'Music server and streamer',
    categories: ['Entertainment', 'Media'],
    versions: ['0.53.3', '0.53.0'],
  },
  {
    name: 'audiobookshelf',
    title: 'Audiobookshelf',
    description: 'Audiobook and podcast server',
    categories: ['Entertainment'],
    versions: ['2.17.5', '2.17.0'],
  },
  {
    name: 'paperless-ngx',
    title: 'Paperless-ngx',
    description: 'Scan, index and archive your documents',
    categories: ['Productivity'],
    versions: ['2.13.5', '2.13.0'],
  },
  {
    name: 'syncthing',
    title: 'Syncthing',
    description: 'Continuous file synchronisation',
    categories: ['Utilities'],
    versions: ['1.28.1', '1.27.12'],
  },
  {
    name: 'uptime-kuma',
    title: 'Uptime Kuma',
    description: 'Self-hosted monitoring tool',
    categories: ['Utilities', 'Developer Tools'],
    versions: ['1.23.16', '1.23.13'],
  },
  {
    name: 'grafana',
    title: 'Grafana',
    description: 'Dashboards for metrics and logs',
    categories: ['Developer Tools'],
    versions: ['11.4.0', '11.3.1'],
  },
  {
    name: 'minio',
    title: 'MinIO',
    description: 'S3-compatible object storage',
    categories: ['Developer Tools'],
    versions: ['2024.11.7', '2024.10.13'],
    cfgType: 'middleware',
  },
  {
    name: 'postgres',
    title: 'PostgreSQL',
    description: 'Relational database as a shared middleware',
    categories: ['Developer Tools'],
    versions: ['16.6.0', '15.10.0'],
    cfgType: 'middleware',
  },
  {
    name: 'redis',
    title: 'Redis',
    description: 'In-memory data store as a shared middleware',
    categories: ['Developer Tools'],
    versions: ['7.4.1', '7.2.6'],
    cfgType: 'middleware',
  },
  {
    name: 'wordpress',
    title: 'WordPress',
    description: 'Blogs and websites',
    categories: ['Productivity', 'Social'],
    versions: ['6.7.1', '6.6.2'],
  },
  {
    name: 'ghost',
    title: 'Ghost',
    description: 'Publishing platform for newsletters',
    categories: ['Social'],
    versions: ['5.104.2', '5.100.0'],
  },
  {
    name: 'mastodon',
    title: 'Mastodon',
    description: 'Decentralised social network',
    categories: ['Social'],
    versions: ['4.3.2', '4.3.0'],
  },
  {
    name: 'matrix-synapse',
    title: 'Synapse',
    description: 'Matrix homeserver for secure chat',
    categories: ['Social', 'Communication'],
    versions: ['1.121.1', '1.120.0'],
  },
  {
    name: 'rocketchat',
    title: 'Rocket.Chat',
    description: 'Team chat and collaboration',
    categories: ['Communication'],
    versions: ['7.1.0', '7.0.3'],
    price: '19.00',
  },
  {
    name: 'photoprism',
    title: 'PhotoPrism',
    description: 'AI-powered photo library',
    categories: ['Media', 'AI'],
    versions: ['240915', '240711'],
  },
  {
    name: 'calibre-web',
    title: 'Calibre-Web',
    description: 'Browse and read your e-book library',
    categories: ['Entertainment'],
    versions: ['0.6.24', '0.6.23'],
  },
  {
    name: 'firefly-iii',
    title: 'Firefly III',
    description: 'Personal finance manager',
    categories: ['Productivity', 'Finance'],
    versions: ['6.1.24', '6.1.21'],
  },
  {
    name: 'actual-budget',
    title: 'Actual Budget',
    description: 'Local-first budgeting',
    categories: ['Finance'],
    versions: ['24.12.0', '24.11.0'],
    price: '2.50',
  },
  {
    name: 'excalidraw',
    title: 'Excalidraw',
    description: 'Hand-drawn style whiteboard',
    categories: ['Creativity', 'Productivity'],
    versions: ['0.17.6', '0.17.3'],
  },
  {
    name: 'stirling-pdf',
    title: 'Stirling PDF',
    description: 'Edit, merge and convert PDF files',
    categories: ['Utilities'],
    versions: ['0.36.6', '0.36.0'],
  },
  {
    name: 'adguard-home',
    title: 'AdGuard Home',
    description: 'Network-wide ad and tracker blocking',
    categories: ['Utilities', 'Security'],
    versions: ['0.107.55', '0.107.52'],
  },
];

const LOCAL_APPS: { sourceId: string; app: DemoApp }[] = [
  {
    sourceId: 'upload',
    app: {
      name: 'my-notes',
      title: 'My Notes',
      description: 'A notes app uploaded as a chart',
      categories: ['Productivity'],
      versions: ['0.1.0'],
    },
  },
  {
    sourceId: 'studio',
    app: {
      name: 'studio-demo',
      title: 'Studio Demo',
      description: 'An app under development in Studio',
      categories: ['Developer Tools'],
      versions: ['0.0.3', '0.0.2'],
    },
  },
];

function priceConfig(app: DemoApp) {
  if (!app.price) return null;
  return {
    developer: 'demo-developer',
    paid: {
      product_id: `${app.name}-license`,
      price: [
        {
          chain: 'optimism',
          token_symbol: 'USDC',
          receive_wallet: '0x0000000000000000000000000000000000000001',
          product_price: app.price,
        },
      ],
      description: [{ lang: 'en', title: `${app.title} licence`, description: 'One-time purchase' }],
    },
  };
}

function catalogRow(sourceId: string, app: DemoApp) {
  const price = priceConfig(app);
  return {
    sourceId,
    appId: app.name,
    name: app.name,
    version: app.versions[0] as string,
    versions: app.versions,
    cfgType: app.cfgType ?? 'app',
    title: app.title,
    description: app.description,
    searchText: `${app.name} ${app.title} ${app.description}`.toLowerCase(),
    paid: price !== null,
    ...(price ? { price } : {}),
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

/** Seeds the demo rows when the database has no market source yet. Returns whether it seeded. */
export async function seedDemoData(db: Db, now = new Date()): Promise<boolean> {
  if ((await db.marketSource.count()) > 0) return false;
  const at = (minutesAgo: number) => new Date(now.getTime() - minutesAgo * MINUTE);

  await db.$transaction(async (tx) => {
    await tx.marketSource.createMany({ data: DEMO_SOURCES });

    const catalogue = [...APPS.map((app) => ({ sourceId: REMOTE_SOURCE, app })), ...LOCAL_APPS];
    for (const { sourceId, app } of catalogue) {
      await tx.catalogApp.create({
        data: {
          ...catalogRow(sourceId, app),
          categories: { create: app.categories.map((category) => ({ category })) },
        },
      });
    }

    for (const [index, install] of INSTALLS.entries()) {
      const eventTime = at(120 - index * 5);
      const app = APPS.find((candidate) => candidate.name === install.appName);
      const failed = install.state.endsWith('Failed');
      const active = ['downloading', 'installing'].includes(install.state);
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
          opId: `demo-op-${index + 1}`,
          eventTime,
        },
      });
      const taskId = `demo-${String(index + 1).padStart(4, '0')}`;
      const type = install.opType === 'upgrade' ? 'UPGRADE' : 'INSTALL';
      const createdAt = at(125 - index * 5);
      await tx.task.create({
        data: {
          taskId,
          type,
          // Operations still in progress are seeded as PENDING tasks: the task engine picks them
          // up at start and runs them against the app service, so the demo is live from the
          // first second. They hold the one-active-task slot of their app like any task.
          status: failed ? 'FAILED' : active ? 'PENDING' : 'COMPLETED',
          activeKey: active ? `${install.userId}/${REMOTE_SOURCE}/${install.appName}` : null,
          userId: install.userId,
          sourceId: REMOTE_SOURCE,
          appName: install.appName,
          version: install.version,
          opId: active ? null : `demo-op-${index + 1}`,
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
      const historyType = type === 'UPGRADE' ? 'ACTION_UPGRADE' : 'ACTION_INSTALL';
      await tx.historyRecord.create({
        data: {
          type: historyType,
          message: `${type.toLowerCase()} ${install.appName}`,
          app: install.appName,
          userId: install.userId,
          time: createdAt,
          extended: { taskId, status: 'PENDING' },
        },
      });
      if (!active) {
        await tx.historyRecord.create({
          data: {
            type: failed ? 'SYSTEM_INSTALL_FAILED' : 'SYSTEM_INSTALL_SUCCEED',
            message: `${type.toLowerCase()} ${install.appName} ${failed ? 'failed' : 'completed'}`,
            app: install.appName,
            userId: install.userId,
            time: eventTime,
            extended: { taskId, status: failed ? 'FAILED' : 'COMPLETED' },
          },
        });
      }
    }

    // One finished uninstall, so every task type the dashboard filters on has an example.
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

    // Payments: alice bought Plex; bob signed for ComfyUI and is about to pay.
    await tx.payment.create({
      data: {
        userId: 'alice',
        sourceId: REMOTE_SOURCE,
        appId: 'plex',
        appName: 'plex',
        productId: 'plex-license',
        developerName: 'demo-developer',
        paymentNeed: 'required',
        developerSync: 'completed',
        larePassSync: 'completed',
        signatureStatus: 'required_and_signed',
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
        userId: 'bob',
        sourceId: REMOTE_SOURCE,
        appId: 'comfyui',
        appName: 'comfyui',
        productId: 'comfyui-license',
        developerName: 'demo-developer',
        paymentNeed: 'required',
        developerSync: 'not_started',
        larePassSync: 'completed',
        signatureStatus: 'required_and_signed',
        paymentStatus: 'notification_sent',
        jws: 'demo.jws.bob-comfyui',
        createdAt: at(30),
        updatedAt: at(25),
      },
    });
  });
  return true;
}
