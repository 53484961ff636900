import { createHash } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { brotliCompressSync, deflateRawSync, deflateSync, gzipSync } from 'node:zlib';

/**
 * A market source on a real port, speaking the Olares market-source protocol as the public
 * sources do (a Cloudflare worker such as aamsellem/olares-one-market, the official catalogue as
 * beclab/market's syncer reads it), for the market-source client's and the Syncer's tests:
 *
 * - `GET  /api/v{1,2}/appstore/hash?version=V` → `{ hash, last_updated, version }`
 * - `GET  /api/v{1,2}/appstore/info?version=V` → `{ version, hash, last_updated, data: { apps, tags,
 *   pages, topics, topic_lists, tops, latest, recommends }, stats }`
 * - `POST /api/v{1,2}/applications/info` `{ app_ids, version }` → `{ apps, version, not_found? }`
 *
 * Apps are keyed by an 8-hex-digit id derived from the name (fakeAppId), as real sources key
 * them. The hash is content-addressed (MD5 of the summaries and entries), so it moves exactly
 * when the catalogue does; timestamps carry nine fractional digits. `/api/v2/` answers like
 * `/api/v1/` unless `v1Only`, when it is 404 as on older sources.
 *
 * Controls: `put`/`remove`/`change` an app; `fault(endpoint, …)` makes the next calls (or all,
 * until `fault(endpoint, null)`) fail in one of the ways a real source can; `requests` and
 * `detailCalls` record what was asked. `close()` ends hanging requests too.
 */

export type MarketEndpoint = 'hash' | 'info' | 'details';

export type MarketFault = (
  | /** This HTTP status, with this JSON body when given. */ { kind: 'status'; status?: number; body?: unknown }
  | /** The normal answer, after `ms` (longer than the client's timeout, for timeouts). */ { kind: 'delay'; ms: number }
  | /** HTTP 200 with a body that is not JSON (an HTML error page). */ { kind: 'not-json' }
  | /** HTTP 200 with this JSON as it is: a wrong shape. */ { kind: 'json'; body: unknown }
  | /** HTTP 200 with a JSON body of `bytes` bytes. */ { kind: 'oversized'; bytes: number }
  | /** The connection is dropped without an answer. */ { kind: 'reset' }
  | /**
   * The answer as it is when the request arrives (the catalogue of that moment), sent once `until`
   * settles: a slow source whose answer a test releases when it chooses, with no timer. `arrived`
   * is called when the request is in; `status` (other than 200) answers that status instead.
   */ { kind: 'hold'; until: Promise<unknown>; arrived?: () => void; status?: number }
  | /**
   * The normal answer compressed with `encoding` (gzip, deflate, br; any other name labels the
   * plain JSON), sent although the request asked for no compression, as some proxies do.
   */ { kind: 'compressed'; encoding: string }
  | /** HTTP 200, gzip: a JSON body of `bytes` bytes that compresses to a few kB. */ {
      kind: 'gzip-bomb';
      bytes: number;
    }
  | /**
   * HTTP 200: `{"hash":"h","junk":[{},{},…]}` holding `values` JSON values, each 3 bytes, so that
   * parsing it costs far more than its size suggests; gzip-compressed (to ~1/1000) with `gzip`.
   * The request's `status` is recorded once the whole body has been handed to the socket.
   */ { kind: 'many-values'; values: number; gzip?: boolean }
) & {
  /** For this many calls, then answers normally again; without it, until cleared. */
  times?: number;
};

export interface MarketRequest {
  endpoint: MarketEndpoint | 'unknown';
  api: 'v1' | 'v2' | null;
  method: string;
  /** `version` from the query (hash, info) or the body (details). */
  version: string | null;
  /** The Basic-authentication user name sent, if any. */
  user: string | null;
  status: number;
  /** The client closed the connection before the answer was sent (a call it gave up). */
  abandoned: boolean;
}

export interface FakeMarketSourceOptions {
  /** Entries (ApplicationInfoEntry objects, e.g. from fakeEntry) the catalogue starts with. */
  entries?: Record<string, unknown>[];
  /** Answer 404 under `/api/v2/`, as sources that only speak v1. @default false */
  v1Only?: boolean;
  /** Answer 404 under `/api/v1/`, as sources that only speak v2. @default false */
  v2Only?: boolean;
  /** Demand these Basic credentials (401 otherwise). */
  credentials?: { username: string; password: string };
}

export interface FakeMarketSource {
  /** The base URL to give a client (without credentials). */
  url: string;
  /** The catalogue hash served now. */
  readonly hash: string;
  /** Adds or replaces an app (by id: the entry's `id`, or fakeAppId of its name); returns the id. */
  put(entry: Record<string, unknown>): string;
  /** Removes an app, by id or name. */
  remove(idOrName: string): void;
  /** Merges `patch` into an app's entry (by id or name); its `updated_at` moves if anything changed. */
  change(idOrName: string, patch: Record<string, unknown>): void;
  /** The entry served for an app, by id or name. */
  entry(idOrName: string): Record<string, unknown> | undefined;
  /** The catalogue served now, for `restore`. */
  snapshot(): CatalogueSnapshot;
  /** Serves a catalogue `snapshot` took again, hash included: a source rolled back to an earlier build. */
  restore(snapshot: CatalogueSnapshot): void;
  ids(): string[];
  setV1Only(v1Only: boolean): void;
  /**
   * Has the hash call answer `prefix` before the catalogue hash, while info carries the bare one:
   * a source whose published hash covers more than its index. '' for the same hash in both.
   */
  setHashPrefix(prefix: string): void;
  /**
   * Has info answer the catalogue `snapshot` took (its summaries and its hash) while the hash call
   * answers the one served now: a cache in front of the index. null to answer the current one again.
   */
  lagIndex(snapshot: CatalogueSnapshot | null): void;
  /**
   * Has details answer `entry` for an app (by id or name) whatever its summary says: a cache behind
   * the index. null to answer its current entry again.
   */
  lagDetails(idOrName: string, entry: Record<string, unknown> | null): void;
  /** Sets (or with null, clears) the fault of one endpoint. */
  fault(endpoint: MarketEndpoint, fault: MarketFault | null): void;
  /** Every request, in arrival order, 404s included. */
  requests: MarketRequest[];
  /** Requests that reached `endpoint` (under `api` only, when given). */
  count(endpoint: MarketEndpoint, api?: 'v1' | 'v2'): number;
  /** The ids asked in each details call, in arrival order. */
  detailCalls: string[][];
  /** Forgets requests and detail calls (not the catalogue or faults). */
  resetCounters(): void;
  close(): Promise<void>;
}

/** Real sources key apps by 8 hex digits; here they come from the name, so tests can predict them. */
export function fakeAppId(name: string): string {
  return createHash('md5').update(name).digest('hex').slice(0, 8);
}

/** A time as Go's RFC3339Nano writes it with all nine fractional digits (`…T10:00:00.123000000Z`). */
export function nanoTime(date: Date): string {
  return date.toISOString().replace(/\.(\d{3})Z$/, '.$1000000Z');
}

const SOURCE_ORIGIN = 'https://fake-market.example';

export interface FakePriceOptions {
  productId?: string;
  /** One entry per chain, §6.3 PriceEntry. @default USDC on optimism and USDT on eth, 1.99 each */
  prices?: { chain: string; token_symbol: string; receive_wallet: string; product_price: string }[];
  developer?: string;
}

/** A PriceConfig (`price.yaml`, market-domain.md §6.3) that asks for a one-time payment. */
export function fakePrice(options: FakePriceOptions = {}): Record<string, unknown> {
  const prices = options.prices ?? [
    {
      chain: 'optimism',
      token_symbol: 'USDC',
      receive_wallet: '0x1111111111111111111111111111111111111111',
      product_price: '1.99',
    },
    {
      chain: 'eth',
      token_symbol: 'USDT',
      receive_wallet: '0x2222222222222222222222222222222222222222',
      product_price: '1.99',
    },
  ];
  return {
    developer: options.developer ?? 'did:key:fake-developer',
    paid: {
      product_id: options.productId ?? 'license',
      price: prices,
      description: [{ lang: 'en-US', title: 'Licence', description: 'One-time purchase', icon: '' }],
    },
    products: [],
  };
}

/**
 * A plausible ApplicationInfoEntry (market-domain.md §6.3), made up by the project: localized
 * title and description, icon, categories, tags, developer, requirements (byte and core counts
 * as strings, as sources send them), architectures, one entrance, options, a version history
 * with nine-digit timestamps. `overrides` replace fields whole (e.g. `{ price: fakePrice() }`).
 */
export function fakeEntry(name: string, overrides: Record<string, unknown> = {}): Record<string, unknown> {
  const id = fakeAppId(name);
  const version = typeof overrides.version === 'string' ? overrides.version : '1.0.0';
  const title = `${name.charAt(0).toUpperCase()}${name.slice(1)}`;
  const mergedAt = nanoTime(new Date(Date.UTC(2026, 0, 15, 9, 30, 0, 250)));
  return {
    id,
    name,
    appID: id,
    cfgType: 'app',
    chartName: `${name}-${version}.tgz`,
    version,
    versionName: version,
    apiVersion: 'v1',
    title: { 'en-US': title, 'zh-CN': `${title}（中文）` },
    description: { 'en-US': `${title} does one thing well.`, 'zh-CN': `${title} 的简介` },
    fullDescription: { 'en-US': `${title} does one thing well.\nIt runs on Olares.` },
    upgradeDescription: { 'en-US': `What is new in ${version}.` },
    locale: ['en-US', 'zh-CN'],
    i18n: {
      'en-US': { metadata: { title, description: `${title} does one thing well.` } },
      'zh-CN': { metadata: { title: `${title}（中文）`, description: `${title} 的简介` } },
    },
    icon: `${SOURCE_ORIGIN}/icons/${name}.png`,
    promoteImage: [`${SOURCE_ORIGIN}/screenshots/${name}-1.png`],
    promoteVideo: '',
    featuredImage: `${SOURCE_ORIGIN}/screenshots/${name}-featured.png`,
    screenshots: null,
    tags: ['fake', name],
    appLabels: [],
    categories: ['Productivity'],
    subCategory: '',
    developer: 'Fake Developer',
    submitter: 'fake-submitter',
    target: '',
    rating: 0,
    count: null,
    requiredMemory: String(512 * 1024 * 1024),
    requiredDisk: String(1024 * 1024 * 1024),
    requiredCPU: '0.5',
    limitedMemory: String(1024 * 1024 * 1024),
    limitedCPU: '1',
    supportArch: ['amd64', 'arm64'],
    supportClient: {},
    permission: { appData: true },
    entrances: [
      {
        name,
        host: name,
        port: 8080,
        title,
        icon: `${SOURCE_ORIGIN}/icons/${name}.png`,
        authLevel: 'private',
        invisible: false,
        openMethod: 'window',
      },
    ],
    ports: [],
    tailscale: null,
    middleware: null,
    options: { dependencies: [{ name: 'olares', version: '>=1.12.0-0', type: 'system' }] },
    subCharts: [],
    envs: [],
    namespace: '',
    onlyAdmin: false,
    doc: '',
    website: `${SOURCE_ORIGIN}/${name}`,
    sourceCode: `${SOURCE_ORIGIN}/${name}/source`,
    license: [{ text: 'MIT', url: `${SOURCE_ORIGIN}/${name}/LICENSE` }],
    legal: [],
    lastCommitHash: createHash('sha1').update(`${name}@${version}`).digest('hex'),
    createTime: 1_768_469_400,
    updateTime: 1_768_469_400,
    versionHistory: [{ appName: name, version, versionName: version, mergedAt, upgradeDescription: '' }],
    updated_at: mergedAt,
    ...overrides,
  };
}

interface App {
  entry: Record<string, unknown>;
  updatedAt: string;
}

/** A catalogue as the fake served it (see `snapshot`). */
export interface CatalogueSnapshot {
  apps: ReadonlyMap<string, App>;
}

const COMPRESSORS: Record<string, (plain: Buffer) => Buffer> = {
  gzip: (plain) => gzipSync(plain),
  deflate: (plain) => deflateSync(plain),
  // Labelled `deflate` but without zlib's wrapping, as some servers send it.
  'deflate (raw)': (plain) => deflateRawSync(plain),
  br: (plain) => brotliCompressSync(plain),
};

/** Body size read from a details request; real requests are a few KB. */
const MAX_REQUEST_BYTES = 1024 * 1024;

export async function startFakeMarketSource(options: FakeMarketSourceOptions = {}): Promise<FakeMarketSource> {
  const apps = new Map<string, App>();
  const faults = new Map<MarketEndpoint, MarketFault>();
  const requests: MarketRequest[] = [];
  const detailCalls: string[][] = [];
  const timers = new Set<NodeJS.Timeout>();
  let v1Only = options.v1Only ?? false;
  let lastUpdated = nanoTime(new Date());
  let hash: string | null = null;
  let hashPrefix = '';
  let laggingIndex: CatalogueSnapshot | null = null;
  const laggingDetails = new Map<string, Record<string, unknown>>();

  const idOf = (idOrName: string) =>
    apps.has(idOrName) ? idOrName : [...apps].find(([, app]) => app.entry.name === idOrName)?.[0];
  const touched = () => {
    hash = null;
    lastUpdated = nanoTime(new Date());
  };
  const put = (entry: Record<string, unknown>): string => {
    const id = typeof entry.id === 'string' ? entry.id : fakeAppId(String(entry.name));
    const updatedAt = nanoTime(new Date());
    apps.set(id, { entry: { ...entry, id, updated_at: updatedAt }, updatedAt });
    touched();
    return id;
  };
  for (const entry of options.entries ?? []) put(entry);

  const summaries = (catalogue: ReadonlyMap<string, App>) =>
    Object.fromEntries([...catalogue].map(([id, app]) => [id, summaryOf(id, app)]));
  const currentHash = () => {
    hash ??= hashOf(apps);
    return hash;
  };

  /** The normal answer of an endpoint. */
  const answer = async (
    endpoint: MarketEndpoint,
    req: IncomingMessage,
    url: URL,
    record: MarketRequest,
  ): Promise<{ status: number; body: unknown }> => {
    const version = url.searchParams.get('version') ?? '1.12.0';
    switch (endpoint) {
      case 'hash':
        return { status: 200, body: { hash: `${hashPrefix}${currentHash()}`, last_updated: lastUpdated, version } };
      case 'info': {
        const served = laggingIndex?.apps ?? apps;
        const servedHash = laggingIndex ? hashOf(served) : currentHash();
        return {
          status: 200,
          body: infoAnswer(version, servedHash, lastUpdated, summaries(served), [...served.values()]),
        };
      }
      case 'details': {
        const body = await readJson(req);
        if (!isObject(body) || !Array.isArray(body.app_ids) || !body.app_ids.every((id) => typeof id === 'string')) {
          return { status: 400, body: { error: 'app_ids must be a list of ids' } };
        }
        const asked = body.app_ids as string[];
        record.version = typeof body.version === 'string' ? body.version : null;
        detailCalls.push(asked);
        const found: Record<string, unknown> = {};
        const notFound: string[] = [];
        for (const id of asked) {
          const app = apps.get(id);
          const lagging = laggingDetails.get(id);
          if (lagging) found[id] = lagging;
          else if (app) found[id] = app.entry;
          else notFound.push(id);
        }
        const version = record.version ?? '1.12.0';
        return { status: 200, body: { apps: found, version, ...(notFound.length ? { not_found: notFound } : {}) } };
      }
    }
  };

  const server = createServer(async (req, res) => {
    const url = new URL(req.url ?? '/', 'http://fake');
    const route = /^\/api\/(v1|v2)\/(appstore\/hash|appstore\/info|applications\/info)$/.exec(url.pathname);
    const api = (route?.[1] as 'v1' | 'v2' | undefined) ?? null;
    const endpoint = routeEndpoint(route?.[2], req.method);
    const record: MarketRequest = {
      endpoint: endpoint ?? 'unknown',
      api,
      method: req.method ?? '',
      version: url.searchParams.get('version'),
      user: basicUser(req.headers.authorization),
      status: 0,
      abandoned: false,
    };
    requests.push(record);
    res.once('close', () => {
      if (!res.writableFinished) record.abandoned = true;
    });
    const send = (status: number, body: unknown) => {
      record.status = status;
      reply(res, status, body);
    };

    if (options.credentials && req.headers.authorization !== basicHeader(options.credentials)) {
      return send(401, { error: 'unauthorized' });
    }
    if (!endpoint || (api === 'v2' && v1Only) || (api === 'v1' && options.v2Only)) {
      return send(404, { error: 'Not Found' });
    }

    const fault = faults.get(endpoint);
    if (fault) {
      if (fault.times !== undefined && --fault.times <= 0) faults.delete(endpoint);
      switch (fault.kind) {
        case 'status':
          return send(fault.status ?? 500, fault.body ?? { error: 'internal error' });
        case 'not-json':
          record.status = 200;
          res.writeHead(200, { 'content-type': 'text/html' }).end('<html><body>502 Bad Gateway</body></html>');
          return;
        case 'json':
          return send(200, fault.body);
        case 'oversized':
          record.status = 200;
          res.writeHead(200, { 'content-type': 'application/json' });
          res.end(`{"hash":"${'f'.repeat(Math.max(0, fault.bytes - 11))}"}`);
          return;
        case 'reset':
          req.socket.destroy();
          return;
        case 'compressed': {
          const { status, body } = await answer(endpoint, req, url, record);
          record.status = status;
          const json = Buffer.from(JSON.stringify(body));
          const compress = COMPRESSORS[fault.encoding] ?? ((plain: Buffer) => plain);
          const label = fault.encoding.replace(' (raw)', '');
          const headers = { 'content-type': 'application/json', 'content-encoding': label };
          res.writeHead(status, headers).end(compress(json));
          return;
        }
        case 'gzip-bomb':
          record.status = 200;
          res.writeHead(200, { 'content-type': 'application/json', 'content-encoding': 'gzip' });
          res.end(gzipSync(`{"hash":"${'f'.repeat(Math.max(0, fault.bytes - 11))}"}`));
          return;
        case 'many-values': {
          const plain = Buffer.from(`{"hash":"h","junk":[${'{},'.repeat(Math.max(0, fault.values - 6))}{}]}`);
          const headers = { 'content-type': 'application/json', ...(fault.gzip ? { 'content-encoding': 'gzip' } : {}) };
          res.writeHead(200, headers).end(fault.gzip ? gzipSync(plain) : plain, () => {
            record.status = 200;
          });
          return;
        }
        case 'hold': {
          const held = await answer(endpoint, req, url, record);
          fault.arrived?.();
          await fault.until.catch(() => undefined);
          if (res.destroyed) return;
          if (fault.status !== undefined && fault.status !== 200)
            return send(fault.status, { error: 'upstream failed' });
          return send(held.status, held.body);
        }
        case 'delay': {
          const timer = setTimeout(async () => {
            timers.delete(timer);
            if (res.destroyed) return;
            const { status, body } = await answer(endpoint, req, url, record);
            send(status, body);
          }, fault.ms);
          timers.add(timer);
          return;
        }
      }
    }
    const { status, body } = await answer(endpoint, req, url, record);
    send(status, body);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;

  return {
    url: `http://127.0.0.1:${port}`,
    get hash() {
      return currentHash();
    },
    put,
    remove(idOrName) {
      const id = idOf(idOrName);
      if (id === undefined) throw new Error(`fake market source: no app ${idOrName}`);
      apps.delete(id);
      touched();
    },
    change(idOrName, patch) {
      const id = idOf(idOrName);
      const app = id === undefined ? undefined : apps.get(id);
      if (id === undefined || !app) throw new Error(`fake market source: no app ${idOrName}`);
      const next = { ...app.entry, ...patch, id, updated_at: app.updatedAt };
      if (JSON.stringify(next) === JSON.stringify(app.entry)) return;
      const updatedAt = nanoTime(new Date());
      apps.set(id, { entry: { ...next, updated_at: updatedAt }, updatedAt });
      touched();
    },
    entry(idOrName) {
      const id = idOf(idOrName);
      return id === undefined ? undefined : apps.get(id)?.entry;
    },
    snapshot: () => ({ apps: new Map(apps) }),
    restore(snapshot) {
      apps.clear();
      for (const [id, app] of snapshot.apps) apps.set(id, app);
      touched();
    },
    ids: () => [...apps.keys()],
    setV1Only(value) {
      v1Only = value;
    },
    setHashPrefix(prefix) {
      hashPrefix = prefix;
    },
    lagIndex(snapshot) {
      laggingIndex = snapshot;
    },
    lagDetails(idOrName, entry) {
      const id = idOf(idOrName);
      if (id === undefined) throw new Error(`fake market source: no app ${idOrName}`);
      if (entry) laggingDetails.set(id, entry);
      else laggingDetails.delete(id);
    },
    fault(endpoint, fault) {
      if (fault) faults.set(endpoint, { ...fault });
      else faults.delete(endpoint);
    },
    requests,
    count: (endpoint, api) =>
      requests.filter((request) => request.endpoint === endpoint && (api === undefined || request.api === api)).length,
    detailCalls,
    resetCounters() {
      requests.length = 0;
      detailCalls.length = 0;
    },
    async close() {
      for (const timer of timers) clearTimeout(timer);
      timers.clear();
      // Delayed requests keep their sockets open; close() alone would wait for them.
      server.closeAllConnections();
      await new Promise<void>((resolve, reject) => server.close((error) => (error ? reject(error) : resolve())));
    },
  };
}

/** Content-addressed, as public sources compute theirs when they build the catalogue. */
function hashOf(catalogue: ReadonlyMap<string, App>): string {
  const sorted = [...catalogue].sort(([a], [b]) => a.localeCompare(b)).map(([id, app]) => [id, app.entry]);
  return createHash('md5').update(JSON.stringify(sorted)).digest('hex');
}

function routeEndpoint(path: string | undefined, method: string | undefined): MarketEndpoint | null {
  if (path === 'appstore/hash' && method === 'GET') return 'hash';
  if (path === 'appstore/info' && method === 'GET') return 'info';
  if (path === 'applications/info' && method === 'POST') return 'details';
  return null;
}

/** The index view of an app, with the fields real sources put in `data.apps`. */
function summaryOf(id: string, app: App): Record<string, unknown> {
  const { entry } = app;
  const categories = Array.isArray(entry.categories) ? entry.categories : [];
  const description = entry.description;
  return {
    id,
    name: entry.name,
    version: entry.version,
    category: categories[0] ?? '',
    categories,
    description: isObject(description) ? (description['en-US'] ?? '') : (description ?? ''),
    icon: entry.icon ?? '',
    screenshots: null,
    tags: entry.tags ?? [],
    metadata: null,
    source: 1,
    updated_at: app.updatedAt,
  };
}

function infoAnswer(
  version: string,
  hash: string,
  lastUpdated: string,
  apps: Record<string, Record<string, unknown>>,
  entries: App[],
): Record<string, unknown> {
  const categories = [
    ...new Set(entries.flatMap(({ entry }) => (Array.isArray(entry.categories) ? entry.categories : []))),
  ] as string[];
  const tags = Object.fromEntries(
    categories.map((category, sort) => [
      category,
      {
        _id: `cat_${category.toLowerCase().replace(/\W+/g, '_')}`,
        name: category,
        title: { 'en-US': category },
        icon: `${SOURCE_ORIGIN}/icons/categories/${encodeURIComponent(category)}.svg`,
        sort,
        source: 1,
        updated_at: lastUpdated,
        createdAt: lastUpdated,
      },
    ]),
  );
  const names = entries.map(({ entry }) => entry.name as string);
  return {
    version,
    hash,
    last_updated: lastUpdated,
    data: {
      apps,
      recommends: {},
      pages: {},
      topics: {},
      topic_lists: {},
      tops: names.slice(0, 10).map((name, index) => ({ appId: name, rank: index + 1 })),
      latest: names.slice(-10).reverse(),
      tags,
    },
    stats: {
      appstore_data: {
        apps: Object.keys(apps).length,
        pages: 0,
        recommends: 0,
        tags: categories.length,
        topic_lists: 0,
        topics: 0,
      },
      last_updated: lastUpdated,
    },
  };
}

async function readJson(req: IncomingMessage): Promise<unknown> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > MAX_REQUEST_BYTES) return undefined;
    chunks.push(chunk as Buffer);
  }
  try {
    return JSON.parse(Buffer.concat(chunks).toString('utf8'));
  } catch {
    return undefined;
  }
}

function basicHeader({ username, password }: { username: string; password: string }): string {
  return `Basic ${Buffer.from(`${username}:${password}`).toString('base64')}`;
}

function basicUser(header: string | undefined): string | null {
  if (!header?.startsWith('Basic ')) return null;
  return Buffer.from(header.slice(6), 'base64').toString('utf8').split(':', 1)[0] ?? null;
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function reply(res: ServerResponse, status: number, body: unknown): void {
  if (res.destroyed) return;
  res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body));
}
