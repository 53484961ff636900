import { createServer, type Server } from 'node:http';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { DEFAULT_MAX_JSON_VALUES, fetchJson } from '../src/platform/outbound-http.js';
import { fakeAppId, fakeEntry } from './support/fake-market-source.js';

/**
 * The one outbound-HTTP helper every adapter uses (app service, developer service, chart repo),
 * against a real server on port 0: what a broken or hostile upstream can and cannot do to us.
 */

const LIMIT = 64 * 1024;
let server: Server;
let base: string;
const stalled: (() => void)[] = [];

/** JSON text of exactly `values` values (member names counted): `{"a":[{},{},…]}`. */
const emptyObjects = (values: number) => `{"a":[${'{},'.repeat(values - 4)}{}]}`;
/** Strings holding every byte the count looks at, escaped quotes and backslashes included. */
const TRICKY_STRING = 'a,b:c{d[e]f}\\"g\\\\';
/**
 * An index as a big catalogue's source answers it: 10,000 summaries with the fields real ones
 * carry (~30 values each), about 300,000 values in all.
 */
function bigIndex(): string {
  const apps: Record<string, unknown> = {};
  for (let i = 0; i < 10_000; i++) {
    const { id, name, version, categories, description, icon, tags, updated_at } = fakeEntry(`app${i}`);
    apps[fakeAppId(`app${i}`)] = {
      id,
      name,
      version,
      category: 'Productivity',
      categories,
      description: (description as Record<string, string>)['en-US'],
      icon,
      screenshots: null,
      tags: [...(tags as string[]), 'one more', 'and another'],
      metadata: null,
      source: 1,
      updated_at,
      versionHistory: [
        { version, mergedAt: updated_at },
        { version: '0.9.0', mergedAt: updated_at },
      ],
    };
  }
  return JSON.stringify({ version: '1.12.0', hash: 'h', data: { apps } });
}

beforeAll(async () => {
  server = createServer((req, res) => {
    switch (req.url) {
      case '/small':
        res.setHeader('content-type', 'application/json');
        return res.end(JSON.stringify({ ok: true }));
      case '/declared-too-large':
        res.setHeader('content-length', String(LIMIT + 1));
        return res.end('x'.repeat(LIMIT + 1));
      case '/chunked-too-large':
        // No content-length: the limit must hold while the body streams in.
        res.write('['.padEnd(LIMIT / 2, ' '));
        res.write(' '.repeat(LIMIT / 2));
        return res.end(' 1]');
      case '/exactly-the-limit':
        return res.end(`"${'y'.repeat(LIMIT - 2)}"`);
      case '/stall':
        res.writeHead(200, { 'content-type': 'application/json' });
        res.write('{"started":');
        stalled.push(() => res.end('1}'));
        return;
      case '/values-at-the-bound':
        return res.end(emptyObjects(DEFAULT_MAX_JSON_VALUES));
      case '/values-over-the-bound':
        return res.end(emptyObjects(DEFAULT_MAX_JSON_VALUES + 1));
      case '/strings': {
        // 12 values: the object, 5 names, 5 values, the string in b; what the strings hold is not counted.
        const text = JSON.stringify({ [TRICKY_STRING]: TRICKY_STRING, b: [TRICKY_STRING], c: 1, d: '', e: [] });
        return res.end(text);
      }
      case '/big-index':
        return res.end(bigIndex());
      case '/redirect':
        res.writeHead(302, { location: '/small' });
        return res.end();
      default:
        res.statusCode = 404;
        return res.end('not json');
    }
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  base = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
});

afterAll(async () => {
  for (const finish of stalled) finish();
  await new Promise((resolve) => server.close(resolve));
});

describe('fetchJson', () => {
  test('an answer within the limit is parsed, with its status', async () => {
    const small = await fetchJson({ url: `${base}/small`, timeoutMs: 2000, maxResponseBytes: LIMIT });
    expect(small).toMatchObject({ kind: 'answered', status: 200, ok: true, isJson: true, body: { ok: true } });
    const exact = await fetchJson({ url: `${base}/exactly-the-limit`, timeoutMs: 2000, maxResponseBytes: LIMIT });
    expect(exact).toMatchObject({ kind: 'answered', isJson: true, body: 'y'.repeat(LIMIT - 2) });
  });

  test('an answer over the limit is refused, whether it declares its length or streams', async () => {
    for (const path of ['/declared-too-large', '/chunked-too-large']) {
      const outcome = await fetchJson({ url: `${base}${path}`, timeoutMs: 2000, maxResponseBytes: LIMIT });
      expect(outcome).toMatchObject({ kind: 'too_large', status: 200, limit: LIMIT });
    }
  });

  test('an answer of more JSON values than the bound is refused before it is parsed; one at the bound is read', async () => {
    const over = await fetchJson({ url: `${base}/values-over-the-bound`, timeoutMs: 10_000 });
    expect(over).toMatchObject({ kind: 'too_many_values', status: 200, limit: DEFAULT_MAX_JSON_VALUES });
    const at = await fetchJson({ url: `${base}/values-at-the-bound`, timeoutMs: 10_000 });
    expect(at).toMatchObject({ kind: 'answered', isJson: true });
    const strings = await fetchJson({ url: `${base}/strings`, timeoutMs: 2000, maxJsonValues: 12 });
    expect(strings).toMatchObject({ kind: 'answered', isJson: true, body: { [TRICKY_STRING]: TRICKY_STRING } });
    const tighter = await fetchJson({ url: `${base}/strings`, timeoutMs: 2000, maxJsonValues: 11 });
    expect(tighter).toMatchObject({ kind: 'too_many_values', limit: 11 });
  });

  test("a big catalogue's index (10,000 apps) is read whole under the default bound", async () => {
    const outcome = await fetchJson({ url: `${base}/big-index`, timeoutMs: 30_000, maxResponseBytes: 32 << 20 });
    expect(outcome).toMatchObject({ kind: 'answered', isJson: true });
    const body = (outcome as { body: { data: { apps: object } } }).body;
    expect(Object.keys(body.data.apps)).toHaveLength(10_000);
  });

  test('a body that stops half-way ends as a timeout: the timeout covers reading the body', async () => {
    const outcome = await fetchJson({ url: `${base}/stall`, timeoutMs: 300 });
    expect(outcome).toEqual({ kind: 'timeout' });
  });

  test('a redirect is not followed unless asked for', async () => {
    const kept = await fetchJson({ url: `${base}/redirect`, timeoutMs: 2000 });
    expect(kept).toMatchObject({ kind: 'answered', status: 302, ok: false });
    const followed = await fetchJson({ url: `${base}/redirect`, timeoutMs: 2000, followRedirects: true });
    expect(followed).toMatchObject({ kind: 'answered', status: 200, body: { ok: true } });
  });

  test('a non-JSON answer is answered but not JSON', async () => {
    const outcome = await fetchJson({ url: `${base}/missing`, timeoutMs: 2000 });
    expect(outcome).toMatchObject({ kind: 'answered', status: 404, ok: false, isJson: false, body: undefined });
  });

  test('an upstream that is not listening is unreachable, and a secret in the URL is not in the problem', async () => {
    const closedPort = await new Promise<number>((resolve) => {
      const probe = createServer().listen(0, '127.0.0.1', () => {
        const { port } = probe.address() as { port: number };
        probe.close(() => resolve(port));
      });
    });
    const secret = 'sk-outbound-secret-123456';
    const outcome = await fetchJson({
      url: `http://127.0.0.1:${closedPort}/${secret}`,
      timeoutMs: 2000,
      secrets: [secret],
    });
    expect(outcome).toMatchObject({ kind: 'unreachable', problem: 'ECONNREFUSED' });
    expect(JSON.stringify(outcome)).not.toContain(secret);
  });
});
