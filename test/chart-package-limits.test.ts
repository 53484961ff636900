import { randomBytes } from 'node:crypto';
import { gzipSync } from 'node:zlib';
import { Header, Pax } from 'tar';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { stringify } from 'yaml';
import { startSeededServer } from './support/seed.js';
import { AUTH_ENV, type TestServer, TOKENS } from './support/server.js';

/**
 * The bounds of a chart upload on what it costs to read (src/services/chart-package.ts,
 * chart-tar.ts, yaml-nodes.ts): archives built here by hand, header by header, sent through a real
 * server as an admin uploads them. Each is refused as VALIDATION naming the problem, and nothing
 * is stored. Uploads that pass and the other refusals: chart-upload.test.ts.
 */

const MiB = 1024 * 1024;

const UPLOAD = `mutation Upload($chart: File!) {
  uploadChart(chart: $chart) {
    __typename
    ... on UploadChartSuccess { app { name version } }
    ... on Error { code message }
  }
}`;

interface Entry {
  path: string;
  type?: 'File' | 'Directory' | 'SymbolicLink' | 'GlobalExtendedHeader' | 'ExtendedHeader';
  body?: Buffer | string;
  linkpath?: string;
}

/** One entry: its header, then its body padded to 512-byte blocks. */
function block({ path, type = 'File', body = '', linkpath }: Entry): Buffer {
  const content = Buffer.from(body);
  const header = Buffer.alloc(512);
  new Header({ path, type, size: content.length, mode: 0o644, mtime: new Date(0), linkpath }).encode(header, 0);
  return Buffer.concat([header, content, Buffer.alloc((512 - (content.length % 512)) % 512)]);
}

/** An uncompressed tar of the entries, ended by its two zero blocks. */
function tar(entries: (Entry | Buffer)[]): Buffer {
  return Buffer.concat([
    ...entries.map((entry) => (Buffer.isBuffer(entry) ? entry : block(entry))),
    Buffer.alloc(1024),
  ]);
}

/** The manifest of a valid chart `notes` 1.0.0, as text. */
const MANIFEST = stringify({
  'olaresManifest.type': 'app',
  metadata: { name: 'notes', version: '1.0.0', title: 'Notes', categories: ['Utilities'] },
  spec: { requiredMemory: '512Mi' },
});

/** A valid chart `notes` 1.0.0, its manifest replaced by `manifestText` if given. */
function chart(manifestText?: string, extra: (Entry | Buffer)[] = []): (Entry | Buffer)[] {
  return [
    { path: 'notes/', type: 'Directory' },
    { path: 'notes/Chart.yaml', body: stringify({ apiVersion: 'v2', name: 'notes', version: '1.0.0' }) },
    { path: 'notes/OlaresManifest.yaml', body: manifestText ?? MANIFEST },
    ...extra,
  ];
}

/** `n` MiB that gzip shrinks about 600:1 (under node-tar's 1000:1 ratio check), as a file entry. */
function padding(path: string, n: number): Buffer {
  const body = Buffer.alloc(n * MiB);
  for (let at = 0; at < body.length; at += MiB) randomBytes(600).copy(body, at);
  return block({ path, body });
}

let server: TestServer;
beforeAll(async () => {
  ({ server } = await startSeededServer('sqlite', { env: AUTH_ENV }));
  await server.app.db.marketSource.upsert({
    where: { sourceId: 'upload' },
    create: { sourceId: 'upload', title: 'Uploads', type: 'local', priority: 50 },
    update: {},
  });
});
afterAll(() => server?.stop());

/** Uploads the package as an admin: the uploadChart answer. */
async function upload(chartBytes: Buffer): Promise<{ __typename: string; code?: string; message?: string }> {
  const form = new FormData();
  form.set('operations', JSON.stringify({ query: UPLOAD, variables: { chart: null } }));
  form.set('map', JSON.stringify({ 0: ['variables.chart'] }));
  form.set('0', new Blob([new Uint8Array(chartBytes)], { type: 'application/gzip' }), 'chart.tgz');
  const response = await fetch(server.graphqlUrl, {
    method: 'POST',
    body: form,
    headers: { authorization: `Bearer ${TOKENS.ops}`, 'x-graphql-yoga-csrf': '1' },
  });
  expect(response.status).toBe(200);
  return ((await response.json()) as { data: { uploadChart: { __typename: string } } }).data.uploadChart;
}

/** Uploads the package and expects it refused, naming `problem`, with nothing stored. */
async function expectRefused(chartBytes: Buffer, problem: string) {
  const stored = () => server.app.db.catalogApp.findMany({ where: { sourceId: 'upload' } });
  const before = await stored();
  const answer = await upload(chartBytes);
  expect(answer).toMatchObject({ __typename: 'ValidationError', code: 'VALIDATION' });
  expect(answer.message).toContain(problem);
  expect(await stored()).toEqual(before);
  return answer;
}

describe('the unpacked archive', () => {
  test('a chart gzipped twice (its tar.gz gzipped again, 70 MiB inside) is refused, not inflated by node-tar', async () => {
    const inner = gzipSync(tar(chart(undefined, [padding('notes/values.bin', 70)])));
    await expectRefused(
      gzipSync(inner),
      'the archive is compressed twice: the tar inside the gzip is itself gzip-compressed',
    );
  });

  test('a tar of zstd-compressed content inside the gzip is refused, naming zstd', async () => {
    const zstd = Buffer.concat([Buffer.from([0x28, 0xb5, 0x2f, 0xfd]), randomBytes(2000)]);
    await expectRefused(gzipSync(zstd), 'the tar inside the gzip is itself zstd-compressed');
  });

  test('the first bad entry is refused as the stream reaches it, before the rest (past 64 MiB) is inflated', async () => {
    // Read whole first, the archive was refused for its size, not for the link the reader met first.
    const entries = chart(undefined, [
      { path: 'notes/link', type: 'SymbolicLink', linkpath: '/etc/passwd' },
      padding('notes/values.bin', 70),
    ]);
    await expectRefused(gzipSync(tar(entries)), 'symbolic links are not allowed: notes/link');
  });

  test('a chart of 60 MiB unpacked is still accepted', async () => {
    const answer = await upload(gzipSync(tar(chart(undefined, [padding('notes/values.bin', 60)]))));
    expect(answer).toMatchObject({ __typename: 'UploadChartSuccess' });
  });
});

/** `count` lines made by `line(index)`. */
const lines = (count: number, line: (index: number) => string) =>
  Array.from({ length: count }, (_, index) => line(index)).join('');

describe('the manifests as YAML', () => {
  test('a manifest of 23,000 keys is refused by its size in nodes (keys, values and items)', async () => {
    // yaml's own duplicate check compared each key with every earlier one: 14 s of event loop.
    const manifest = `${MANIFEST}${lines(23_000, (index) => `k${index}: 1\n`)}`;
    await expectRefused(
      gzipSync(tar(chart(manifest))),
      'OlaresManifest.yaml has more than 10000 keys, values and items',
    );
  });

  test.each([
    ['a block map', `${MANIFEST}metadata: {}\n`, 'at line 10, column 1'],
    ['a flow map', `${MANIFEST}x: {a: 1, b: 2, a: 3}\n`, 'at line 10, column 17'],
    ['a nested map', `${MANIFEST}x:\n  a: 1\n  "a": 2\n`, 'at line 12, column 3'],
    [
      'a map of 4,000 keys, at its end',
      `${MANIFEST}${lines(4000, (i) => `k${i}: 1\n`)}k0: 2\n`,
      'at line 4010, column 1',
    ],
  ])('a key twice in %s is refused, named by line and column as yaml names it', async (_case, manifest, where) => {
    await expectRefused(
      gzipSync(tar(chart(manifest))),
      `OlaresManifest.yaml is not valid YAML: Map keys must be unique ${where}`,
    );
  });

  test('keys that differ, as yaml compares them, are no duplicates (.nan, collections, aliases)', async () => {
    const manifest = `${MANIFEST}x:\n  .nan: 1\n  .NaN: 2\n  ? [a]\n  : 1\n  ? [a]\n  : 2\ns: &s y\nz:\n  *s : 1\n  y2: 2\n`;
    expect(await upload(gzipSync(tar(chart(manifest))))).toMatchObject({ __typename: 'UploadChartSuccess' });
  });

  test('a manifest of 51,000 unknown tags on one line is refused for its warnings, the first placed', async () => {
    // 610 bytes packed: yaml quoted each warning's 255 KB line, 26 s of event loop; then refused by its nodes.
    const manifest = `${MANIFEST}x: [${Array.from({ length: 51_000 }, () => '!t a').join(',')}]\n`;
    await expectRefused(
      gzipSync(tar(chart(manifest))),
      'OlaresManifest.yaml has more than 100 YAML warnings (the first: Unresolved tag: !t at line 10, column 5)',
    );
  });

  test('translations of 9,000 unknown tags each are refused at the first, though under the node bound', async () => {
    // Each under 10,000 nodes: 21 of them were stored, after 11 s of event loop.
    const tags = `x: [${Array.from({ length: 9000 }, () => '!t a').join(',')}]\n`;
    const translations = ['de-DE', 'en-US', 'fr-FR', 'ja-JP', 'zh-CN'].map((locale) => ({
      path: `notes/i18n/${locale}/OlaresManifest.yaml`,
      body: tags,
    }));
    await expectRefused(
      gzipSync(tar(chart(undefined, translations))),
      'i18n/de-DE/OlaresManifest.yaml has more than 100 YAML warnings (the first: Unresolved tag: !t at line 1, column 5)',
    );
  });

  test('256 KiB of commas in a flow sequence (an error each) is refused, naming the first by line and column', async () => {
    // Each error's line was quoted too: over two minutes of event loop for a 500-byte package.
    const manifest = `${MANIFEST}x: [${','.repeat(256 * 1024 - MANIFEST.length - 10)}]\n`;
    await expectRefused(
      gzipSync(tar(chart(manifest))),
      'OlaresManifest.yaml is not valid YAML: Unexpected , in flow sequence at line 10, column 6',
    );
  });

  test('more than 50 aliases are refused before any is resolved', async () => {
    const manifest = `${MANIFEST}s: &s x\n${lines(51, (index) => `a${index}: *s\n`)}`;
    await expectRefused(
      gzipSync(tar(chart(manifest))),
      'OlaresManifest.yaml is not valid YAML: Excessive alias count indicates a resource exhaustion attack',
    );
  });
});

/** A pax extended header (type x) carrying `path` for the entry after it. */
function paxPath(path: string): Buffer {
  return new Pax({ path, mtime: new Date(0) }).encode();
}

describe('late and unbounded checks', () => {
  test('a refusal quotes at most 200 characters of an entry name (a 50,000-character symlink name)', async () => {
    const name = `notes/${'b'.repeat(50_000)}`;
    const answer = await expectRefused(
      gzipSync(tar(chart(undefined, [paxPath(name), { path: 'notes/short', type: 'SymbolicLink', linkpath: 'x' }]))),
      `symbolic links are not allowed: ${name.slice(0, 200)}…`,
    );
    expect(answer.message?.length).toBeLessThan(300);
  });

  test('33 translations are refused before any is parsed', async () => {
    const translations = Array.from({ length: 33 }, (_, index) => ({
      path: `notes/i18n/en-${String.fromCharCode(65 + Math.floor(index / 26), 65 + (index % 26))}/OlaresManifest.yaml`,
      body: index === 0 ? 'metadata: [\n' : 'metadata: {title: T}\n',
    }));
    await expectRefused(gzipSync(tar(chart(undefined, translations))), 'more than 32 translations in i18n/');
  });

  test('tar metadata headers (1,001 global pax headers) count toward the 1,000 entries', async () => {
    const globals = Array.from({ length: 1001 }, () => new Pax({ comment: 'x' }, true).encode());
    await expectRefused(gzipSync(tar(chart(undefined, globals))), 'the archive has more than 1000 entries');
  });

  test('a pax header over 64 KiB is refused, not skipped (the entry after it would take its short name)', async () => {
    const entries = chart(undefined, [paxPath(`notes/${'a'.repeat(100_000)}`), { path: 'notes/x', body: 'x' }]);
    await expectRefused(gzipSync(tar(entries)), 'a tar metadata header (ExtendedHeader) is larger than 65536 bytes');
  });
});
