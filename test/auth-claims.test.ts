import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { exportJWK, exportSPKI, generateKeyPair, SignJWT } from 'jose';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { Authenticator } from '../src/auth/viewer.js';
import { ConfigError, loadConfig } from '../src/platform/config.js';
import { HistoryQuery, ViewerQuery } from './support/operations.js';
import { openRawSocket } from './support/raw-ws.js';
import { dataOf, errorCodes, execute, startTestServer, type TestServer } from './support/server.js';

const SECRET = 'a-test-secret-of-at-least-32-characters!';
const key = new TextEncoder().encode(SECRET);
const now = () => Math.floor(Date.now() / 1000);

/** A token as the identity provider signs it, issued at `iat` (seconds since the epoch). */
const sign = (subject: string, claims: Record<string, unknown> = {}, iat = now()) =>
  new SignJWT(claims)
    .setProtectedHeader({ alg: 'HS256' })
    .setSubject(subject)
    .setIssuedAt(iat)
    .setExpirationTime(iat + 3600)
    .sign(key);

describe('JWT claims the server refuses', () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startTestServer('sqlite', { env: { AUTH_JWT_SECRET: SECRET, AUTH_JWT_CLOCK_SKEW_S: '0' } });
  });
  afterAll(() => server?.stop());

  test('a token issued in the future (iat beyond now + AUTH_JWT_CLOCK_SKEW_S) is 401 UNAUTHENTICATED, no data', async () => {
    const current = await sign('alice');
    expect(dataOf(await execute(server, ViewerQuery, {}, { token: current })).viewer).toEqual({
      userId: 'alice',
      isAdmin: false,
    });
    const response = await execute(server, ViewerQuery, {}, { token: await sign('alice', {}, now() + 600) });
    expect(response.status).toBe(401);
    expect(errorCodes(response)).toEqual(['UNAUTHENTICATED']);
    expect(response.errors?.[0]?.message).toBe('Token claim "iat" is not accepted');
    expect(response.data ?? null).toBeNull();
  });

  test('the subject "system" (the user of the server\'s own history records) is 401, with or without the admin role', async () => {
    for (const claims of [{}, { role: 'admin' }]) {
      const response = await execute(server, HistoryQuery, { first: 50 }, { token: await sign('system', claims) });
      expect(response.status).toBe(401);
      expect(errorCodes(response)).toEqual(['UNAUTHENTICATED']);
      expect(response.errors?.[0]?.message).toBe('Token claim "sub" names a user id reserved for the server');
      expect(response.data ?? null).toBeNull();
    }
  });

  test('a graphql-ws connection whose token names "system" is closed with 4403', async () => {
    const socket = await openRawSocket(server.url);
    socket.send({ type: 'connection_init', payload: { authorization: `Bearer ${await sign('system')}` } });
    const answer = await socket.nextOfType('connection_ack', 5_000).then(
      () => 'acknowledged',
      () => 'not acknowledged',
    );
    expect(answer).toBe('not acknowledged');
    expect(await socket.closed).toMatchObject({ code: 4403 });
  });
});

describe('AUTH_JWT_CLOCK_SKEW_S applies to iat', () => {
  const authenticator = new Authenticator(loadConfig({ AUTH_JWT_SECRET: SECRET, AUTH_JWT_CLOCK_SKEW_S: '30' }).auth);
  const viewerOf = async (token: string) =>
    authenticator.authenticate({ authorization: `Bearer ${token}`, gatewayUser: null });

  test('an iat within the skew is accepted, one beyond it is refused', async () => {
    expect(await viewerOf(await sign('alice', {}, now() + 20))).toMatchObject({ userId: 'alice' });
    await expect(viewerOf(await sign('alice', {}, now() + 60))).rejects.toThrow('Token claim "iat" is not accepted');
  });
});

describe('settings the server refuses at start, naming the variable', () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'auth-claims-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  const file = (name: string, text: string) => {
    const at = path.join(dir, name);
    writeFileSync(at, text);
    return at;
  };
  const notJson = file('not-json.json', 'vlah');
  const notPem = file('not-pem.pem', 'not a key');
  const notJwks = file('not-jwks.json', '{"kty":"EC"}');
  const noKeys = file('no-keys.json', '{"keys":[]}');

  test.each([
    [{ AUTH_JWT_PUBLIC_KEY: '/nonexistent' }, 'AUTH_JWT_PUBLIC_KEY: /nonexistent cannot be read (ENOENT)'],
    [{ AUTH_JWT_PUBLIC_KEY: notPem }, `AUTH_JWT_PUBLIC_KEY: ${notPem} is not a PEM public key`],
    [
      { AUTH_JWT_PUBLIC_KEY: '-----BEGIN PUBLIC KEY-----\nbroken\n-----END PUBLIC KEY-----' },
      'AUTH_JWT_PUBLIC_KEY: the PEM text is not a PEM public key',
    ],
    [{ AUTH_JWT_JWKS_FILE: '/nonexistent' }, 'AUTH_JWT_JWKS_FILE: /nonexistent cannot be read (ENOENT)'],
    [{ AUTH_JWT_JWKS_FILE: notJson }, `AUTH_JWT_JWKS_FILE: ${notJson} is not JSON`],
    [
      { AUTH_JWT_JWKS_FILE: notJwks },
      `AUTH_JWT_JWKS_FILE: ${notJwks} is not a JSON Web Key Set (an object {"keys": [...]} of JWKs)`,
    ],
    [{ AUTH_JWT_JWKS_FILE: noKeys }, `AUTH_JWT_JWKS_FILE: ${noKeys} has no keys: every token would be refused`],
    [
      { AUTH_TOKENS: 'alice:user:alice-token-0001,system:admin:system-token-0002' },
      'AUTH_TOKENS: entry 2: user id "system" is reserved for the server\'s own records',
    ],
    [
      // the last entry won: the token was bob's, an admin
      { AUTH_TOKENS: 'alice:user:shared-token-0001,bob:admin:shared-token-0001' },
      'AUTH_TOKENS: entry 2 has the token of entry 1',
    ],
    [
      { AUTH_TOKENS: 'al ice:user:alice-token-0001' },
      'AUTH_TOKENS: entry 1: a user id is 1 to 128 letters, digits, _ . @ -',
    ],
  ])('%o is refused with a ConfigError: %s', (env, message) => {
    const build = () => new Authenticator(loadConfig(env).auth);
    expect(build).toThrow(ConfigError);
    expect(build).toThrow(`Invalid configuration:\n  ${message}`);
  });

  test('a refused AUTH_TOKENS entry is not echoed (it holds a secret)', () => {
    expect(() => new Authenticator(loadConfig({ AUTH_TOKENS: 'system:user:system-secret-1' }).auth)).toThrow(
      expect.objectContaining({ message: expect.not.stringContaining('system-secret-1') }),
    );
  });

  test('usable key settings still verify tokens: a PEM file, PEM text, a JWKS file', async () => {
    const rsa = await generateKeyPair('RS256');
    const ec = await generateKeyPair('ES256');
    const pem = await exportSPKI(rsa.publicKey);
    const jwks = file('jwks.json', JSON.stringify({ keys: [{ ...(await exportJWK(ec.publicKey)), kid: 'k1' }] }));
    const rs = await new SignJWT({}).setProtectedHeader({ alg: 'RS256' }).setSubject('bob').sign(rsa.privateKey);
    const es = await new SignJWT({})
      .setProtectedHeader({ alg: 'ES256', kid: 'k1' })
      .setSubject('bob')
      .sign(ec.privateKey);
    for (const [env, token] of [
      [{ AUTH_JWT_PUBLIC_KEY: file('public.pem', pem) }, rs],
      [{ AUTH_JWT_PUBLIC_KEY: pem }, rs],
      [{ AUTH_JWT_JWKS_FILE: jwks }, es],
    ] as const) {
      const authenticator = new Authenticator(loadConfig(env).auth);
      expect(await authenticator.authenticate({ authorization: `Bearer ${token}`, gatewayUser: null })).toMatchObject({
        userId: 'bob',
      });
    }
  });

  test('the server process prints the one-line reason and exits 1 (AUTH_JWT_PUBLIC_KEY=/nonexistent)', () => {
    const result = spawnSync(process.execPath, ['--import', 'tsx', 'src/index.ts'], {
      env: {
        ...process.env,
        AUTH_JWT_PUBLIC_KEY: '/nonexistent',
        PORT: '0',
        DATABASE_URL: `file:${path.join(dir, 'market.db')}`,
      },
      encoding: 'utf8',
      timeout: 20_000,
    });
    expect(result.status).toBe(1);
    expect(result.stderr).toContain('Invalid configuration');
    expect(result.stderr).toContain('AUTH_JWT_PUBLIC_KEY: /nonexistent cannot be read (ENOENT)');
    expect(result.stderr).not.toMatch(/^\s+at /m);
  });
});
