import { randomBytes } from 'node:crypto';
import {
  linkSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import type { IncomingMessage } from 'node:http';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { gzipSync } from 'node:zlib';
import { create as createTar, Header } from 'tar';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { stringify } from 'yaml';
import { Authenticator } from '../src/auth/viewer.js';
import { graphqlBodyLimit } from '../src/http/body.js';
import type { Config } from '../src/platform/config.js';
import { availableDatabases } from './support/databases.js';
import { TaskQuery } from './support/operations.js';
import { type Seeder, startSeededServer } from './support/seed.js';
import { AUTH_ENV, dataOf, execute, installThroughApi, type TestServer, TOKENS, waitFor } from './support/server.js';

/**
 * Chart uploads to the `upload` market source, through the GraphQL multipart request spec on a
 * real server: a package the test packs with node-tar from files it writes, and the malicious
 * archives an attacker would send, each refused with what is wrong and nothing stored.
 */

const databases = await availableDatabases();
const MiB = 1024 * 1024;
const PREFLIGHT = { 'x-graphql-yoga-csrf': '1' };

const UPLOAD = `mutation Upload($chart: File!) {
  uploadChart(chart: $chart) {
    __typename
    ... on UploadChartSuccess { app { sourceId appId name version versions title description categories entry } }
    ... on Error { code message }
  }
}`;

const CATALOG = `query UploadCatalog {
  catalog(sourceId: "upload", first: 40) {
    totalCount
    edges { node { appId name version versions title description categories entry } }
  }
}`;

interface UploadAnswer {
  status: number;
  body: {
    data?: { uploadChart: { __typename: string; code?: string; message?: string; app?: Record<string, unknown> } };
    errors?: { message: string; extensions?: { code?: string } }[];
  };
}

/** POSTs a chart per the multipart request spec: `operations`, `map`, then the file part. */
async function upload(
  server: TestServer,
  chart: Buffer,
  options: {
    /** null: no credential at all. */
    token?: string | null;
    headers?: Record<string, string>;
    /** The `operations` field as sent (default: UPLOAD with `chart: null`). */
    operations?: string;
    /** Changes the form before it is sent (extra parts). */
    edit?: (form: FormData) => void;
  } = {},
): Promise<UploadAnswer> {
  const form = new FormData();
  form.set('operations', options.operations ?? JSON.stringify({ query: UPLOAD, variables: { chart: null } }));
  form.set('map', JSON.stringify({ 0: ['variables.chart'] }));
  form.set('0', new Blob([new Uint8Array(chart)], { type: 'application/gzip' }), 'chart.tgz');
  options.edit?.(form);
  const token = options.token === undefined ? TOKENS.ops : options.token;
  const response = await fetch(server.graphqlUrl, {
    method: 'POST',
    body: form,
    headers: {
      ...(token === null ? {} : { authorization: `Bearer ${token}` }),
      accept: 'application/graphql-response+json',
      ...(options.headers ?? PREFLIGHT),
    },
  });
  return { status: response.status, body: await response.json() };
}

/** The upload source's catalogue, as a user lists it. */
async function uploadCatalog(server: TestServer) {
  const response = await fetch(server.graphqlUrl, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${TOKENS.alice}` },
    body: JSON.stringify({ query: CATALOG }),
  });
  const body = (await response.json()) as {
    data: { catalog: { totalCount: number; edges: { node: Record<string, unknown> }[] } };
  };
  return body.data.catalog;
}

interface ChartSpec {
  name: string;
  version?: string;
  title?: string;
  categories?: string[];
  /** Extra bytes in the chart (incompressible), to reach a size. */
  padding?: number;
}

const workDirs: string[] = [];
afterAll(() => {
  for (const dir of workDirs) rmSync(dir, { recursive: true, force: true });
});

function workDir(): string {
  const dir = mkdtempSync(path.join(tmpdir(), 'chart-upload-'));
  workDirs.push(dir);
  return dir;
}

function manifestOf({ name, version = '1.0.0', title = `${name} title`, categories = ['Utilities'] }: ChartSpec) {
  return {
    'olaresManifest.version': '0.10.0',
    'olaresManifest.type': 'app',
    metadata: {
      name,
      title,
      description: `${title}, uploaded`,
      icon: 'https://icons.example/app.png',
      version,
      categories,
    },
    entrances: [{ name, host: name, port: 8080, title, authLevel: 'private', openMethod: 'window' }],
    spec: {
      versionName: version,
      fullDescription: `All about ${title}.`,
      developer: 'test-developer',
      requiredMemory: '512Mi',
      requiredDisk: '1Gi',
      requiredCpu: '500m',
      supportArch: ['amd64', 'arm64'],
    },
    permission: { appData: true },
    options: { dependencies: [{ name: 'olares', version: '>=1.12.0-0', type: 'system' }] },
  };
}

/** The fields of manifestOf the field cases change. */
type Manifest = {
  metadata: Record<string, unknown>;
  entrances: [Record<string, unknown>, ...Record<string, unknown>[]];
};

/** Names the manifest's entrance `main`, so that only the app's name is at fault. */
function lowercaseEntrance(folder: string, name: string): void {
  const manifest = manifestOf({ name }) as unknown as Manifest;
  manifest.entrances = [{ ...manifest.entrances[0], name: 'main', host: 'main' }];
  writeFileSync(path.join(folder, 'OlaresManifest.yaml'), stringify(manifest));
}

/** Writes a chart folder and packs it with node-tar, as `helm package` would; `edit` changes the files first. */
async function packChart(spec: ChartSpec, edit?: (folder: string) => void): Promise<Buffer> {
  const dir = workDir();
  const folder = path.join(dir, spec.name);
  mkdirSync(path.join(folder, 'templates'), { recursive: true });
  mkdirSync(path.join(folder, 'i18n', 'zh-CN'), { recursive: true });
  writeFileSync(
    path.join(folder, 'Chart.yaml'),
    stringify({ apiVersion: 'v2', name: spec.name, version: spec.version ?? '1.0.0' }),
  );
  writeFileSync(path.join(folder, 'OlaresManifest.yaml'), stringify(manifestOf(spec)));
  writeFileSync(
    path.join(folder, 'i18n', 'zh-CN', 'OlaresManifest.yaml'),
    stringify({ metadata: { title: '测试应用' } }),
  );
  writeFileSync(path.join(folder, 'values.yaml'), stringify({ image: 'nginx:1.27' }));
  writeFileSync(path.join(folder, 'templates', 'deployment.yaml'), 'kind: Deployment\n');
  if (spec.padding) writeFileSync(path.join(folder, 'padding.bin'), randomBytes(spec.padding));
  edit?.(folder);
  const chunks: Buffer[] = [];
  for await (const chunk of createTar({ gzip: true, cwd: dir, portable: true }, readdirSync(dir))) {
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks);
}

/** A gzipped tar of hand-made headers (node-tar's Header), for entries no honest packer writes. */
function rawTar(entries: { path: string; type?: 'File' | 'CharacterDevice'; body?: Buffer | string }[]): Buffer {
  const blocks: Buffer[] = [];
  for (const entry of entries) {
    const body = Buffer.from(entry.body ?? '');
    const header = Buffer.alloc(512);
    new Header({
      path: entry.path,
      type: entry.type ?? 'File',
      size: body.length,
      mode: 0o644,
      mtime: new Date(0),
    }).encode(header, 0);
    blocks.push(header, body, Buffer.alloc((512 - (body.length % 512)) % 512));
  }
  return gzipSync(Buffer.concat([...blocks, Buffer.alloc(1024)]));
}

describe.each(databases)('chart uploads (%s)', (kind) => {
  let server: TestServer;
  let seed: Seeder;
  beforeAll(async () => {
    ({ server, seed } = await startSeededServer(kind, { env: { ...AUTH_ENV, SIMULATED_STEP_MS: '10' } }));
    await server.app.db.marketSource.upsert({
      where: { sourceId: 'upload' },
      create: { sourceId: 'upload', title: 'Uploads', type: 'local', priority: 50 },
      update: {},
    });
  });
  afterAll(() => server?.stop());

  test('an uploaded chart is listed in the upload source with its fields and installs to completion', async () => {
    // Looked up (and missed) before the upload: the install after it must not meet that miss.
    const early = await installAs(server, 'notes', '1.0.0');
    expect(early).toMatchObject({ __typename: 'NotFoundError' });

    const answer = await upload(
      server,
      await packChart({ name: 'notes', title: 'Notes', categories: ['Productivity'] }),
    );
    expect(answer.status).toBe(200);
    expect(answer.body.data?.uploadChart).toMatchObject({
      __typename: 'UploadChartSuccess',
      app: { sourceId: 'upload', appId: 'notes', name: 'notes', version: '1.0.0', title: 'Notes' },
    });

    const listed = (await uploadCatalog(server)).edges.map((edge) => edge.node).find((app) => app.name === 'notes');
    expect(listed).toMatchObject({
      appId: 'notes',
      version: '1.0.0',
      versions: ['1.0.0'],
      title: 'Notes',
      description: 'Notes, uploaded',
      categories: ['Productivity'],
      entry: {
        name: 'notes',
        appID: 'notes',
        cfgType: 'app',
        chartName: 'notes-1.0.0.tgz',
        versionName: '1.0.0',
        icon: 'https://icons.example/app.png',
        fullDescription: 'All about Notes.',
        developer: 'test-developer',
        requiredMemory: String(512 * MiB),
        requiredDisk: String(1024 * MiB),
        requiredCPU: '500m',
        supportArch: ['amd64', 'arm64'],
        entrances: [{ name: 'notes', port: 8080, title: 'Notes' }],
        permission: { appData: true },
        i18n: { 'zh-CN': { metadata: { title: '测试应用' } } },
        versionHistory: [{ appName: 'notes', version: '1.0.0' }],
      },
    });

    const taskId = await installThroughApi(
      server,
      { sourceId: 'upload', appName: 'notes', version: '1.0.0' },
      TOKENS.alice,
    );
    await waitFor(async () => {
      const { task } = dataOf(await execute(server, TaskQuery, { taskId }, { token: TOKENS.alice }));
      return task?.status === 'COMPLETED' ? task : undefined;
    }, `install of the uploaded notes (${taskId}) to complete`);
  });

  test('uploading a newer version replaces the entry, its categories and keeps the earlier version', async () => {
    await upload(
      server,
      await packChart({ name: 'wiki', version: '1.0.0', categories: ['Productivity', 'Utilities'] }),
    );
    const answer = await upload(
      server,
      await packChart({ name: 'wiki', version: '1.1.0', title: 'Wiki 1.1', categories: ['Developer Tools'] }),
    );
    expect(answer.body.data?.uploadChart.__typename).toBe('UploadChartSuccess');
    const wikis = (await uploadCatalog(server)).edges.map((edge) => edge.node).filter((app) => app.name === 'wiki');
    expect(wikis).toHaveLength(1);
    expect(wikis[0]).toMatchObject({
      version: '1.1.0',
      versions: ['1.1.0', '1.0.0'],
      title: 'Wiki 1.1',
      categories: ['Developer Tools'],
    });
    expect(await installAs(server, 'wiki', '1.1.0')).toMatchObject({ __typename: 'InstallAppSuccess' });
  });

  test('uploading an older version only adds it to the history: the entry stays the highest version, listed first', async () => {
    const uploads = [
      { version: '1.0.0', title: 'Ladder 1.0', categories: ['Utilities'] },
      { version: '1.2.0', title: 'Ladder 1.2', categories: ['Developer Tools'] },
      { version: '1.1.0', title: 'Ladder 1.1', categories: ['Productivity'] },
      { version: '0.9.0', title: 'Ladder 0.9', categories: ['Games'] },
    ];
    const answers = [];
    for (const spec of uploads) answers.push(await upload(server, await packChart({ name: 'ladder', ...spec })));
    expect(answers.map((answer) => answer.body.data?.uploadChart.app?.version)).toEqual([
      '1.0.0',
      '1.2.0',
      '1.2.0',
      '1.2.0',
    ]);
    const [ladder] = (await uploadCatalog(server)).edges
      .map((edge) => edge.node)
      .filter((app) => app.name === 'ladder');
    expect(ladder).toMatchObject({
      version: '1.2.0',
      versions: ['1.2.0', '1.1.0', '1.0.0', '0.9.0'],
      title: 'Ladder 1.2',
      categories: ['Developer Tools'],
    });
    const history = (ladder?.entry as { versionHistory?: { version: string }[] } | undefined)?.versionHistory;
    expect(history?.map((item) => item.version)).toEqual(['1.2.0', '1.1.0', '1.0.0', '0.9.0']);
    // An app installed at 1.1.0 is offered 1.2.0, not the 0.9.0 uploaded last.
    await seed.user('alice').app({ appName: 'ladder', sourceId: 'upload', state: 'running', version: '1.1.0' });
    const response = await fetch(server.graphqlUrl, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${TOKENS.alice}` },
      body: JSON.stringify({
        query:
          'query { app(sourceId: "upload", appName: "ladder") { installedVersion latestVersion upgradeAvailable } }',
      }),
    });
    expect(((await response.json()) as { data: { app: unknown } }).data.app).toEqual({
      installedVersion: '1.1.0',
      latestVersion: '1.2.0',
      upgradeAvailable: true,
    });
    expect(await installAs(server, 'ladder', '0.9.0')).toMatchObject({ __typename: 'InstallAppSuccess' });
  });

  test('a version uploaded again however written (v1.1.0, 1.1.0+build.1) replaces its record: one per version', async () => {
    const uploads = [
      { version: '1.0.0', title: 'Same 1.0' },
      { version: '1.1.0', title: 'Same 1.1.0' },
      { version: 'v1.1.0', title: 'Same v1.1.0' },
      { version: '1.1.0+build.1', title: 'Same build 1' },
    ];
    for (const spec of uploads) {
      const answer = await upload(server, await packChart({ name: 'sameversion', ...spec }));
      expect(answer.body.data?.uploadChart.__typename).toBe('UploadChartSuccess');
    }
    const [app] = (await uploadCatalog(server)).edges
      .map((edge) => edge.node)
      .filter((node) => node.name === 'sameversion');
    expect(app).toMatchObject({
      version: '1.1.0+build.1',
      versions: ['1.1.0+build.1', '1.0.0'],
      title: 'Same build 1',
    });
    const history = (app?.entry as { versionHistory?: { version: string }[] } | undefined)?.versionHistory ?? [];
    expect(history.map((item) => item.version)).toEqual(['1.1.0+build.1', '1.0.0']);
    // An older upload after them still only adds its record.
    await upload(server, await packChart({ name: 'sameversion', version: '1.0', title: 'Same 1.0 again' }));
    const [after] = (await uploadCatalog(server)).edges
      .map((edge) => edge.node)
      .filter((node) => node.name === 'sameversion');
    expect(after).toMatchObject({
      version: '1.1.0+build.1',
      versions: ['1.1.0+build.1', '1.0'],
      title: 'Same build 1',
    });
  });

  test('uploads of one app at the same time each keep their version, and the app is added once', async () => {
    const versions = ['2.0.0', '2.0.1', '2.0.2', '2.0.3', '2.0.4', '2.0.5', '2.0.6', '2.0.7'];
    const charts = await Promise.all(versions.map((version) => packChart({ name: 'concur', version })));
    const answers = await Promise.all(charts.map((chart) => upload(server, chart)));
    expect(answers.map((answer) => answer.body.data?.uploadChart.__typename)).toEqual(
      versions.map(() => 'UploadChartSuccess'),
    );
    const listed = (await uploadCatalog(server)).edges.map((edge) => edge.node).find((app) => app.name === 'concur');
    expect([...((listed?.versions as string[] | undefined) ?? [])].sort()).toEqual(versions);
    expect(await installAs(server, 'concur', '2.0.1')).toMatchObject({ __typename: 'InstallAppSuccess' });
    const records = (
      await server.app.db.historyRecord.findMany({ where: { type: 'system', userId: 'system' } })
    ).filter((record) => record.message.includes('(concur'));
    const added = records.filter((record) => record.message.includes('1 added (concur'));
    expect(added).toHaveLength(1);
    // Who put which chart into every user's catalogue: the uploading admin and the version, in the
    // message and the data, one record per upload.
    const version = (record: { message: string } | undefined) => /\(concur (.+)\)$/.exec(record?.message ?? '')?.[1];
    expect(added[0]?.message).toBe(`catalogue of upload changed by ops: 1 added (concur ${version(added[0])})`);
    expect(added[0]?.extended).toMatchObject({
      sourceId: 'upload',
      added: ['concur'],
      by: 'ops',
      versions: { concur: version(added[0]) },
    });
    expect(records.map((record) => version(record)).sort()).toEqual(versions);
    for (const record of records) {
      expect(record.extended).toMatchObject({ by: 'ops', versions: { concur: version(record) } });
    }
  });

  test('an unquoted version that YAML reads as a number (1.10) is kept as written, not as 1.1', async () => {
    const unquote = (file: string) => writeFileSync(file, readFileSync(file, 'utf8').replaceAll('"1.10"', '1.10'));
    const chart = await packChart({ name: 'decimal', version: '1.10' }, (folder) => {
      unquote(path.join(folder, 'Chart.yaml'));
      unquote(path.join(folder, 'OlaresManifest.yaml'));
      expect(readFileSync(path.join(folder, 'Chart.yaml'), 'utf8')).toContain('version: 1.10\n');
    });
    const answer = await upload(server, chart);
    expect(answer.body.data?.uploadChart).toMatchObject({
      __typename: 'UploadChartSuccess',
      app: { name: 'decimal', version: '1.10', versions: ['1.10'] },
    });
    expect(answer.body.data?.uploadChart.app?.entry).toMatchObject({
      versionName: '1.10',
      chartName: 'decimal-1.10.tgz',
    });
  });

  test('a translation keeps its entrance titles, and a title YAML reads as a number as written', async () => {
    const chart = await packChart({ name: 'translated' }, (folder) =>
      writeFileSync(
        path.join(folder, 'i18n', 'zh-CN', 'OlaresManifest.yaml'),
        'metadata:\n  title: 2048.10\nentrances:\n  - name: translated\n    title: 入口\n',
      ),
    );
    const answer = await upload(server, chart);
    expect(answer.body.data?.uploadChart).toMatchObject({ __typename: 'UploadChartSuccess' });
    expect(answer.body.data?.uploadChart.app?.entry).toMatchObject({
      i18n: { 'zh-CN': { metadata: { title: '2048.10' }, entrances: [{ name: 'translated', title: '入口' }] } },
    });
  });

  test('text that only looks deep (a block scalar of ever deeper lines, brackets in plain text) is no nesting', async () => {
    // What the depth scan before the parser must not count: it would refuse a real manifest.
    const nested = Array.from({ length: 40 }, (_, level) => `${'  '.repeat(level)}level${level}: [[{`).join('\n');
    const chart = await packChart({ name: 'looksdeep', title: "don't [stop] {me" }, (folder) => {
      const manifest = manifestOf({ name: 'looksdeep', title: "don't [stop] {me" });
      const spec = { ...(manifest.spec as object), fullDescription: `An example config:\n${nested}\n` };
      const text = stringify({ ...manifest, spec }, { blockQuote: 'literal', lineWidth: 0 });
      expect(text).toContain('fullDescription: |');
      writeFileSync(path.join(folder, 'OlaresManifest.yaml'), text);
    });
    const answer = await upload(server, chart);
    expect(answer.body.data?.uploadChart).toMatchObject({
      __typename: 'UploadChartSuccess',
      app: { name: 'looksdeep', title: "don't [stop] {me" },
    });
    expect(answer.body.data?.uploadChart.app?.entry).toMatchObject({
      fullDescription: expect.stringContaining(`\n${'  '.repeat(39)}level39: [[{\n`),
    });
  });

  test('a title or description past its 1,000-unit column, an emoji on the cut, is listed cut before that emoji', async () => {
    // 'a' and 600 emoji: unit 1,000 is the first half of the 500th emoji. The column kept that half
    // alone, which Prisma refused (INTERNAL_SERVER_ERROR) and a raw write stored as U+FFFD.
    const title = `a${'😀'.repeat(600)}`;
    const answer = await upload(server, await packChart({ name: 'longemoji', title }));
    expect(answer.body.data?.uploadChart, JSON.stringify(answer.body)).toMatchObject({
      __typename: 'UploadChartSuccess',
      app: { title: `a${'😀'.repeat(499)}`, description: `a${'😀'.repeat(499)}` },
    });
    const listed = (await uploadCatalog(server)).edges.map((edge) => edge.node).find((app) => app.name === 'longemoji');
    expect(listed).toMatchObject({ title: `a${'😀'.repeat(499)}` });
    expect(listed?.entry).toMatchObject({ title });
  });

  test('an operation selecting uploadChart more than once (aliases, a fragment) is refused before any runs', async () => {
    const chart = await packChart({ name: 'twiceup' });
    const selection = '{ __typename ... on Error { code message } }';
    const documents = [
      `mutation($c: File!) { a: uploadChart(chart: $c) ${selection} b: uploadChart(chart: $c) ${selection} c: uploadChart(chart: $c) ${selection} }`,
      `mutation($c: File!) { a: uploadChart(chart: $c) ${selection} ...More } fragment More on Mutation { b: uploadChart(chart: $c) ${selection} }`,
    ];
    for (const query of documents) {
      const before = await uploadCatalog(server);
      const answer = await upload(server, chart, {
        operations: JSON.stringify({ query, variables: { c: null } }),
        edit: (form) => form.set('map', JSON.stringify({ 0: ['variables.c'] })),
      });
      expect(answer.status).toBe(400);
      expect(answer.body.data).toBeUndefined();
      expect(answer.body.errors).toEqual([
        expect.objectContaining({
          message: expect.stringContaining('uploadChart may run at most once per operation'),
          extensions: expect.objectContaining({ code: 'LIMIT_EXCEEDED' }),
        }),
      ]);
      expect(await uploadCatalog(server)).toEqual(before);
    }
    // One, aliased or not, runs.
    const one = `mutation($c: File!) { only: uploadChart(chart: $c) ${selection} }`;
    const answer = await upload(server, chart, {
      operations: JSON.stringify({ query: one, variables: { c: null } }),
      edit: (form) => form.set('map', JSON.stringify({ 0: ['variables.c'] })),
    });
    expect((answer.body.data as unknown as { only: { __typename: string } }).only.__typename).toBe(
      'UploadChartSuccess',
    );
  });

  test('a package bigger than MAX_BODY_BYTES but within CHART_UPLOAD_MAX_BYTES is accepted', async () => {
    const chart = await packChart({ name: 'bigchart', padding: 3 * MiB });
    expect(chart.length).toBeGreaterThan(MiB);
    expect((await upload(server, chart)).body.data?.uploadChart.__typename).toBe('UploadChartSuccess');
  });

  const malicious: [string, () => Promise<Buffer> | Buffer, string][] = [
    [
      'a path that climbs out of the chart folder',
      () =>
        rawTar([
          { path: 'evil/Chart.yaml', body: 'name: evil' },
          { path: 'evil/../../etc/passwd', body: 'x' },
        ]),
      'entry evil/../../etc/passwd escapes the chart folder',
    ],
    [
      'an absolute path',
      () => rawTar([{ path: '/etc/cron.d/evil', body: 'x' }]),
      'entry /etc/cron.d/evil is an absolute path',
    ],
    [
      'a symbolic link',
      () => packChart({ name: 'linked' }, (folder) => symlinkSync('/etc/passwd', path.join(folder, 'passwd'))),
      'symbolic links are not allowed: linked/passwd',
    ],
    [
      'a hard link',
      () =>
        packChart({ name: 'hardlinked' }, (folder) =>
          linkSync(path.join(folder, 'values.yaml'), path.join(folder, 'values-copy.yaml')),
        ),
      'hard links are not allowed: hardlinked/',
    ],
    [
      'a gzip bomb (small compressed, huge unpacked)',
      () => rawTar([{ path: 'bomb/zeros.bin', body: Buffer.alloc(70 * MiB) }]),
      'the archive is larger than 67108864 bytes unpacked',
    ],
    [
      'too many entries',
      () => rawTar(Array.from({ length: 1001 }, (_, index) => ({ path: `many/file-${index}.txt`, body: 'x' }))),
      'the archive has more than 1000 entries',
    ],
    [
      'a device file',
      () =>
        rawTar([
          { path: 'device/Chart.yaml', body: 'name: device' },
          { path: 'device/null', type: 'CharacterDevice' },
        ]),
      'only files and folders are allowed: device/null is a CharacterDevice',
    ],
    [
      'two top-level folders',
      () =>
        rawTar([
          { path: 'one/Chart.yaml', body: 'name: one' },
          { path: 'two/Chart.yaml', body: 'name: two' },
        ]),
      'the archive holds more than one top-level folder: one and two',
    ],
    [
      'a manifest that is not YAML',
      () =>
        packChart({ name: 'broken' }, (folder) =>
          writeFileSync(path.join(folder, 'OlaresManifest.yaml'), 'metadata: [\n'),
        ),
      'OlaresManifest.yaml is not valid YAML',
    ],
    [
      'a chart folder named differently from its app',
      () => packChart({ name: 'renamed' }, (folder) => renameSync(folder, `${folder}-other`)),
      'the chart folder renamed-other differs from metadata.name renamed',
    ],
    [
      'a file that is not gzip-compressed',
      () => Buffer.from('PK\u0003\u0004 a zip file'),
      'not a gzip-compressed tar archive',
    ],
    [
      'a chart without Chart.yaml',
      () => packChart({ name: 'nochart' }, (folder) => rmSync(path.join(folder, 'Chart.yaml'))),
      'Chart.yaml is missing',
    ],
    [
      'a manifest without metadata.name',
      () =>
        packChart({ name: 'noname' }, (folder) => {
          const manifest = manifestOf({ name: 'noname' });
          writeFileSync(
            path.join(folder, 'OlaresManifest.yaml'),
            stringify({ ...manifest, metadata: { ...manifest.metadata, name: undefined } }),
          );
        }),
      'OlaresManifest.yaml: metadata.name is missing',
    ],
    [
      'an invalid app name',
      () => packChart({ name: 'bad name!' }),
      'OlaresManifest.yaml: metadata.name "bad name!" is not accepted',
    ],
    [
      'a manifest nested 120,000 levels deep',
      () =>
        packChart({ name: 'deep' }, (folder) =>
          writeFileSync(path.join(folder, 'OlaresManifest.yaml'), `deep: ${'['.repeat(120_000)}\n`),
        ),
      'OlaresManifest.yaml nests deeper than 32 levels',
    ],
    [
      // Refused for its depth before the parser reads it, so before the key twice that it reports first.
      'a manifest nested 100,000 levels deep after a key twice',
      () =>
        packChart({ name: 'deeper' }, (folder) =>
          writeFileSync(
            path.join(folder, 'OlaresManifest.yaml'),
            `metadata: {}\nmetadata: {}\ndeep: ${'['.repeat(100_000)}\n`,
          ),
        ),
      'OlaresManifest.yaml nests deeper than 32 levels',
    ],
    // Refused by the scan before the parser (which names no field: `OlaresManifest.yaml: extra
    // nests …` is the check after a parse). 500 levels: the parser copes, so the words tell;
    // at 100,000 (yaml-depth.test.ts) it took 0.8–2.5 s and 100–155 MB before refusing them.
    ...(
      [
        ['an anchor', `extra: &a ${'['.repeat(500)}${']'.repeat(500)}`],
        ['a tag', `extra: !t ${'['.repeat(500)}${']'.repeat(500)}`],
        ['a quote inside a plain scalar', `extra: [a'b, ${'['.repeat(500)}${']'.repeat(500)}]`],
      ] as const
    ).map(([after, nested]): [string, () => Promise<Buffer>, string] => [
      `a manifest nested 500 levels deep after ${after}`,
      () =>
        packChart({ name: 'hidden' }, (folder) => {
          const file = path.join(folder, 'OlaresManifest.yaml');
          writeFileSync(file, `${readFileSync(file, 'utf8')}${nested}\n`);
        }),
      'OlaresManifest.yaml nests deeper than 32 levels',
    ]),
    [
      'a Chart.yaml of 50,000 compact sequences (`- - - …`)',
      () =>
        packChart({ name: 'compact' }, (folder) =>
          writeFileSync(
            path.join(folder, 'Chart.yaml'),
            `name: compact\nversion: 1.0.0\nx:\n  ${'- '.repeat(50_000)}x\n`,
          ),
        ),
      'Chart.yaml nests deeper than 32 levels',
    ],
    ...(
      [
        [
          'an icon that is a javascript: URL',
          'fieldicon',
          (m: Manifest) => {
            m.metadata.icon = 'javascript:alert(1)';
          },
          'OlaresManifest.yaml: icon must be an http or https URL',
        ],
        [
          'an entrance host with a line break',
          'fieldhost',
          (m: Manifest) => {
            m.entrances[0].host = 'evil.example.com\r\nX: y';
          },
          'OlaresManifest.yaml: entrances.0.host must be a lowercase DNS label',
        ],
        [
          'an entrance port of -1',
          'fieldport',
          (m: Manifest) => {
            m.entrances[0].port = -1;
          },
          'OlaresManifest.yaml: entrances.0.port must be a whole number from 0 to 65535',
        ],
        [
          'an openMethod that is a javascript: URL',
          'fieldopen',
          (m: Manifest) => {
            m.entrances[0].openMethod = 'javascript:alert(1)';
          },
          'OlaresManifest.yaml: entrances.0.openMethod must be default, iframe or window',
        ],
        [
          'an entrance named ../../x',
          'fieldentrance',
          (m: Manifest) => {
            m.entrances[0].name = '../../x';
          },
          'OlaresManifest.yaml: entrances.0.name must be a lowercase DNS label',
        ],
      ] as const
    ).map(([what, name, edit, problem]): [string, () => Promise<Buffer>, string] => [
      what,
      () =>
        packChart({ name }, (folder) => {
          const manifest = manifestOf({ name }) as unknown as Manifest;
          edit(manifest);
          writeFileSync(path.join(folder, 'OlaresManifest.yaml'), stringify(manifest));
        }),
      problem,
    ]),
    ...(
      [
        [{ name: 'web', icon: 'javascript:alert(1)' }, 'entrances.0.icon must be an http or https URL'],
        [{ name: 'web', host: 'web\r\nX: y' }, 'entrances.0.host must be a lowercase DNS label'],
        [{ name: 'web', port: 99999 }, 'entrances.0.port must be a whole number from 0 to 65535'],
        [
          { name: 'web', openMethod: 'javascript:alert(1)' },
          'entrances.0.openMethod must be default, iframe or window',
        ],
      ] as const
    ).map(([entrance, problem]): [string, () => Promise<Buffer>, string] => [
      `a translation whose entrance breaks the rules (${Object.keys(entrance)[1]})`,
      () =>
        packChart({ name: 'translated' }, (folder) =>
          writeFileSync(
            path.join(folder, 'i18n', 'zh-CN', 'OlaresManifest.yaml'),
            stringify({ metadata: { title: '测试应用' }, entrances: [entrance] }),
          ),
        ),
      `i18n/zh-CN/OlaresManifest.yaml: ${problem}`,
    ]),
    [
      'a locale list naming a path',
      () =>
        packChart({ name: 'pathlocale' }, (folder) => {
          const manifest = manifestOf({ name: 'pathlocale' });
          const spec = { ...(manifest.spec as object), locale: ['en-US', '../x', { a: 2 }] };
          writeFileSync(path.join(folder, 'OlaresManifest.yaml'), stringify({ ...manifest, spec }));
        }),
      'OlaresManifest.yaml: spec.locale.1 is not a locale like en-US',
    ],
    [
      'an app type that is a path',
      () =>
        packChart({ name: 'pathtype' }, (folder) =>
          writeFileSync(
            path.join(folder, 'OlaresManifest.yaml'),
            stringify({ ...manifestOf({ name: 'pathtype' }), 'olaresManifest.type': '../../evil' }),
          ),
        ),
      'OlaresManifest.yaml: olaresManifest.type must be a lowercase name (a-z, 0-9, "-"), at most 32 characters',
    ],
    [
      'a translation whose title is a map',
      () =>
        packChart({ name: 'translated' }, (folder) =>
          writeFileSync(
            path.join(folder, 'i18n', 'zh-CN', 'OlaresManifest.yaml'),
            stringify({ metadata: { title: { nested: 'map' } } }),
          ),
        ),
      'i18n/zh-CN/OlaresManifest.yaml: metadata.title must be text',
    ],
    [
      'an app name with capitals (Plex)',
      () => packChart({ name: 'Plex' }, (folder) => lowercaseEntrance(folder, 'Plex')),
      'OlaresManifest.yaml: metadata.name "Plex" must be a lowercase DNS label',
    ],
    [
      'an app name of 64 characters',
      () => packChart({ name: 'a'.repeat(64) }, (folder) => lowercaseEntrance(folder, 'a'.repeat(64))),
      `OlaresManifest.yaml: metadata.name "${'a'.repeat(64)}" must be a lowercase DNS label`,
    ],
    [
      'a manifest with a key twice',
      () =>
        packChart({ name: 'twice' }, (folder) =>
          writeFileSync(path.join(folder, 'OlaresManifest.yaml'), 'metadata: {}\nmetadata: {}\n'),
        ),
      'OlaresManifest.yaml is not valid YAML: Map keys must be unique at line 2, column 1',
    ],
    [
      'a memory requirement past what whole bytes can say',
      () =>
        packChart({ name: 'huge' }, (folder) => {
          const manifest = manifestOf({ name: 'huge' });
          const spec = { ...(manifest.spec as object), requiredMemory: '99999999999999999999999999999Ei' };
          writeFileSync(path.join(folder, 'OlaresManifest.yaml'), stringify({ ...manifest, spec }));
        }),
      'OlaresManifest.yaml: spec.requiredMemory must be a quantity like 512Mi or 2Gi',
    ],
    [
      'more than 32 categories',
      () => packChart({ name: 'manycats', categories: Array.from({ length: 33 }, (_, i) => `Category ${i}`) }),
      'OlaresManifest.yaml: metadata.categories must list at most 32',
    ],
    [
      'a version that is a path',
      () => packChart({ name: 'pathver', version: '../../../etc/x' }),
      'OlaresManifest.yaml: metadata.version "../../../etc/x" is not a SemVer version (e.g. 1.2.3)',
    ],
    [
      'a version with a line break',
      () => packChart({ name: 'breakver', version: '1.0.0\nfoo' }),
      'OlaresManifest.yaml: metadata.version "1.0.0\\nfoo" is not a SemVer version (e.g. 1.2.3)',
    ],
    [
      // Quoted to 100 UTF-16 units: the cut falls inside the emoji, which is left out whole.
      'a version of 99 letters and an emoji',
      () => packChart({ name: 'emojiver', version: `${'a'.repeat(99)}😀z` }),
      `OlaresManifest.yaml: metadata.version "${'a'.repeat(99)}…" is not a SemVer version (e.g. 1.2.3)`,
    ],
  ];

  test.each(malicious)('%s is refused (VALIDATION naming it) and nothing is stored', async (_case, build, problem) => {
    const before = await uploadCatalog(server);
    const answer = await upload(server, await build());
    expect(answer.status).toBe(200);
    expect(answer.body.data?.uploadChart).toMatchObject({ __typename: 'ValidationError', code: 'VALIDATION' });
    expect(answer.body.data?.uploadChart.message).toContain(problem);
    expect(answer.body.data?.uploadChart.message).not.toMatch(/:\s*$/); // no dangling colon
    expect(answer.body.data?.uploadChart.message).not.toMatch(/\p{Cs}|\\u[dD][89abAB]/u); // no half of an emoji
    expect(await uploadCatalog(server)).toEqual(before);
  });

  test('a body over MAX_BODY_BYTES + CHART_UPLOAD_MAX_BYTES is refused before it is read (413)', async () => {
    const before = await uploadCatalog(server);
    const answer = await upload(server, randomBytes(12 * MiB));
    expect(answer.status).toBe(413);
    expect(answer.body.errors?.[0]).toMatchObject({ extensions: { code: 'VALIDATION' } });
    expect(answer.body.errors?.[0]?.message).toContain('CHART_UPLOAD_MAX_BYTES');
    expect(await uploadCatalog(server)).toEqual(before);
  });

  /** A refusal by the multipart limits: the status, VALIDATION naming the limit, and nothing stored. */
  async function expectRefused(send: () => Promise<UploadAnswer>, status: number, problem: string) {
    const before = await uploadCatalog(server);
    const answer = await send();
    expect(answer.status).toBe(status);
    expect(answer.body.data).toBeUndefined();
    expect(answer.body.errors?.[0]).toMatchObject({ extensions: { code: 'VALIDATION' } });
    expect(answer.body.errors?.[0]?.message).toContain(problem);
    expect(await uploadCatalog(server)).toEqual(before);
  }

  test('a package over CHART_UPLOAD_MAX_BYTES is refused by the multipart parser (413) and nothing is stored', async () => {
    const chart = await packChart({ name: 'huge', padding: 10 * MiB + 1024 });
    await expectRefused(
      () => upload(server, chart),
      413,
      'The chart file is larger than 10485760 bytes (CHART_UPLOAD_MAX_BYTES)',
    );
  });

  test('an operations part over MAX_BODY_BYTES is refused (413), even within the upload body limit', async () => {
    const chart = await packChart({ name: 'bigoperations' });
    const operations = JSON.stringify({ query: `${UPLOAD}\n# ${'x'.repeat(MiB)}`, variables: { chart: null } });
    await expectRefused(
      () => upload(server, chart, { operations }),
      413,
      'A multipart field (operations, map) is larger than 1048576 bytes (MAX_BODY_BYTES)',
    );
  });

  test('a second file part is refused (400) and nothing is stored', async () => {
    const chart = await packChart({ name: 'twofiles' });
    const second = await packChart({ name: 'secondfile' });
    await expectRefused(
      () =>
        upload(server, chart, {
          edit: (form) => {
            form.set('map', JSON.stringify({ 0: ['variables.chart'], 1: ['variables.chart'] }));
            form.set('1', new Blob([new Uint8Array(second)], { type: 'application/gzip' }), 'second.tgz');
          },
        }),
      400,
      'only the operations and map fields and one file',
    );
  });

  test('a field part besides operations and map is refused (400)', async () => {
    const chart = await packChart({ name: 'extrafield' });
    await expectRefused(
      () => upload(server, chart, { edit: (form) => form.set('extra', 'x') }),
      400,
      'only the operations and map fields and one file',
    );
  });

  test.each([
    ['operations that are not JSON', (form: FormData) => form.set('operations', '{'), 'operations', /valid JSON/],
    ['a map that is not JSON', (form: FormData) => form.set('map', '{"0":'), 'map', /valid JSON/],
    ['no operations', (form: FormData) => form.delete('operations'), 'operations', /Missing/],
    ['a map entry that is not a list of paths', (form: FormData) => form.set('map', '{"0":5}'), 'map', /list of paths/],
    ['a map path that is not text', (form: FormData) => form.set('map', '{"0":[5]}'), 'map', /list of paths/],
    ['operations that are null', (form: FormData) => form.set('operations', 'null'), 'operations', /JSON object/],
    ['operations that are a string', (form: FormData) => form.set('operations', '"x"'), 'operations', /JSON object/],
    ['operations that are a number', (form: FormData) => form.set('operations', '5'), 'operations', /JSON object/],
  ])(
    '%s is a VALIDATION error (400) naming the field, not logged as a failure',
    async (_case, edit, field, problem) => {
      const logged = server.logs.length;
      const answer = await upload(server, await packChart({ name: 'malformed' }), { edit });
      expect(answer.status).toBe(400);
      expect(answer.body.errors?.[0]).toMatchObject({
        message: expect.stringMatching(problem),
        extensions: { code: 'VALIDATION', issues: [{ path: field }] },
      });
      expect(server.logs.slice(logged).filter((line) => line.includes('"level":50'))).toEqual([]);
    },
  );

  test("without an admin's credential a multipart body gets only MAX_BODY_BYTES (413), without an accepted one nothing (401); an admin sends the same", async () => {
    const chart = await packChart({ name: 'anonymous', padding: 3 * MiB });
    const before = await uploadCatalog(server);
    for (const token of [null, 'not-a-valid-token']) {
      const refused = await upload(server, chart, { token });
      expect(refused.status, String(token)).toBe(401);
      expect(refused.body.errors?.[0]).toMatchObject({ extensions: { code: 'UNAUTHENTICATED' } });
    }
    const user = await upload(server, chart, { token: TOKENS.alice });
    expect(user.status).toBe(413);
    expect(user.body.errors?.[0]).toMatchObject({ extensions: { code: 'VALIDATION' } });
    expect(user.body.errors?.[0]?.message).toContain("MAX_BODY_BYTES; a larger chart upload needs an admin's");
    expect(await uploadCatalog(server)).toEqual(before);
    expect((await upload(server, chart)).body.data?.uploadChart.__typename).toBe('UploadChartSuccess');
  });

  test('a user who is not an admin gets FORBIDDEN and nothing is stored', async () => {
    const before = await uploadCatalog(server);
    const answer = await upload(server, await packChart({ name: 'sneaky' }), { token: TOKENS.alice });
    expect(answer.body.data?.uploadChart).toMatchObject({ __typename: 'ForbiddenError', code: 'FORBIDDEN' });
    expect(await uploadCatalog(server)).toEqual(before);
  });

  test('a multipart POST without the preflight header (what any web page can send) is refused with 415', async () => {
    const before = await uploadCatalog(server);
    const answer = await upload(server, await packChart({ name: 'csrf' }), { headers: {} });
    expect(answer.status).toBe(415);
    expect(answer.body.errors?.[0]?.message).toContain('x-graphql-yoga-csrf');
    expect(await uploadCatalog(server)).toEqual(before);
  });

  test('a gzipped multipart body (Content-Encoding: gzip) is refused with 415 naming the coding, nothing stored', async () => {
    const before = await uploadCatalog(server);
    const form = new FormData();
    form.set('operations', JSON.stringify({ query: UPLOAD, variables: { chart: null } }));
    form.set('map', JSON.stringify({ 0: ['variables.chart'] }));
    form.set('0', new Blob([new Uint8Array(await packChart({ name: 'gzipped' }))]), 'chart.tgz');
    const multipart = new Request('http://localhost/', { method: 'POST', body: form });
    const response = await fetch(server.graphqlUrl, {
      method: 'POST',
      body: gzipSync(Buffer.from(await multipart.arrayBuffer())),
      headers: {
        authorization: `Bearer ${TOKENS.ops}`,
        'content-type': multipart.headers.get('content-type') as string,
        'content-encoding': 'gzip',
        ...PREFLIGHT,
      },
    });
    expect(response.status).toBe(415);
    const body = (await response.json()) as { errors: { message: string; extensions: { code: string } }[] };
    expect(body.errors[0]).toEqual({
      message: 'Request bodies are read as sent: Content-Encoding gzip is not accepted (send it uncompressed)',
      extensions: { code: 'VALIDATION' },
    });
    expect(await uploadCatalog(server)).toEqual(before);
  });

  test('an upload from a page of another origin is refused with 403, header or not', async () => {
    const before = await uploadCatalog(server);
    const answer = await upload(server, await packChart({ name: 'crossorigin' }), {
      headers: { ...PREFLIGHT, origin: 'https://evil.example' },
    });
    expect(answer.status).toBe(403);
    expect(answer.body.errors?.[0]?.extensions?.code).toBe('FORBIDDEN');
    expect(await uploadCatalog(server)).toEqual(before);
  });

  test('a chart sent as JSON instead of a file is refused with VALIDATION', async () => {
    const response = await fetch(server.graphqlUrl, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${TOKENS.ops}` },
      body: JSON.stringify({ query: UPLOAD, variables: { chart: 'H4sIAAAA' } }),
    });
    const body = (await response.json()) as UploadAnswer['body'];
    expect(body.data?.uploadChart).toMatchObject({ __typename: 'ValidationError', code: 'VALIDATION' });
  });
});

/** installApp as alice, answered with its result's typename (and error code). */
async function installAs(server: TestServer, appName: string, version: string) {
  const response = await fetch(server.graphqlUrl, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${TOKENS.bob}` },
    body: JSON.stringify({
      query: `mutation($input: InstallAppInput!) { installApp(input: $input) { __typename ... on Error { code message } } }`,
      variables: { input: { sourceId: 'upload', appName, version } },
    }),
  });
  return ((await response.json()) as { data: { installApp: unknown } }).data.installApp;
}

describe('the body limit of a chart upload, decided from the viewer its headers authenticate, before the body is read', () => {
  const limits = { maxBodyBytes: MiB, chartUploadMaxBytes: 10 * MiB };
  const auth: Config['auth'] = {
    tokens: [
      { userId: 'alice', role: 'user', token: TOKENS.alice },
      { userId: 'ops', role: 'admin', token: TOKENS.ops },
    ],
    userHeader: 'x-user',
    adminUsers: ['root'],
    jwt: null,
    localDevelopment: false,
  };
  const multipart = (headers: Record<string, string>) =>
    ({
      method: 'POST',
      headers: { 'content-type': 'multipart/form-data; boundary=x', ...PREFLIGHT, ...headers },
    }) as unknown as IncomingMessage;
  /** The limit as the router decides it: the viewer the headers authenticate (routes.ts) decides it. */
  const limitFor = async (req: IncomingMessage, config: Config['auth'] = auth) =>
    graphqlBodyLimit(req, limits, await new Authenticator(config).fromHeaders(req.headers));
  const LARGE = 11 * MiB;

  // Senders without accepted credentials are answered 401 before this (see the upload tests above).
  test.each([
    ['an admin token', { authorization: `Bearer ${TOKENS.ops}` }, LARGE],
    ['an admin named by the gateway header', { 'x-user': 'root' }, LARGE],
    ["a user's token (only admins upload)", { authorization: `Bearer ${TOKENS.alice}` }, MiB],
    ['a user named by the gateway header', { 'x-user': 'alice' }, MiB],
  ])('with %s', async (_case, headers, bytes) => {
    expect((await limitFor(multipart(headers))).bytes).toBe(bytes);
  });

  test('a JSON POST or a multipart POST without the preflight header gets MAX_BODY_BYTES, admin or not', async () => {
    const admin = { authorization: `Bearer ${TOKENS.ops}` };
    const json = { method: 'POST', headers: { 'content-type': 'application/json', ...admin } } as unknown;
    const bare = {
      method: 'POST',
      headers: { 'content-type': 'multipart/form-data; boundary=x', ...admin },
    } as unknown;
    for (const req of [json, bare]) {
      expect(await limitFor(req as IncomingMessage)).toEqual({ bytes: MiB, setting: 'MAX_BODY_BYTES' });
    }
  });

  test('in local development mode every request is the admin', async () => {
    const local = { ...auth, tokens: [], userHeader: undefined, adminUsers: [], localDevelopment: true };
    const limit = await limitFor(multipart({}), local);
    expect(limit).toEqual({ bytes: LARGE, setting: 'MAX_BODY_BYTES + CHART_UPLOAD_MAX_BYTES' });
  });
});
