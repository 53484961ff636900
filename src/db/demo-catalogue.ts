/**
 * The demo catalogue (DEMO_DATA=1): its market sources and the apps they offer. Data only;
 * `seedDemoData` in demo-data.ts writes it.
 */

export const REMOTE_SOURCE = 'market.olares';

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

export interface DemoApp {
  name: string;
  title: string;
  description: string;
  categories: string[];
  versions: string[];
  /** USDC price for paid apps. */
  price?: string;
  cfgType?: string;
}

export const DEMO_APPS: DemoApp[] = [
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

export const DEMO_LOCAL_APPS: { sourceId: string; app: DemoApp }[] = [
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
