import { spawnSync } from 'node:child_process';
import { describe, expect, test } from 'vitest';
import { ConfigError, loadConfig } from '../src/platform/config.js';

describe('configuration', () => {
  test('defaults: port 4000 on 127.0.0.1, SQLite under ./data, demo data, local development mode', () => {
    const config = loadConfig({});
    expect(config).toMatchObject({
      port: 4000,
      host: '127.0.0.1',
      databaseUrl: 'file:./data/market.db',
      demoData: true,
      maxPageSize: 100,
      auth: { localDevelopment: true, tokens: [] },
    });
  });

  test('AUTH_TOKENS parses userId:role:token entries', () => {
    const config = loadConfig({ AUTH_TOKENS: 'alice:user:alice-secret-1, ops:admin:ops-secret-22' });
    expect(config.auth.tokens).toEqual([
      { userId: 'alice', role: 'user', token: 'alice-secret-1' },
      { userId: 'ops', role: 'admin', token: 'ops-secret-22' },
    ]);
    expect(config.auth.localDevelopment).toBe(false);
  });

  test.each([
    [{ PORT: 'abc' }, /PORT: must be a number/],
    [{ PORT: '70000' }, /PORT: must be between 0 and 65535/],
    [{ DATABASE_URL: 'mysql://x' }, /DATABASE_URL: must be file:<path>/],
    [{ DEMO_DATA: 'maybe' }, /DEMO_DATA: must be one of/],
    [{ LOG_LEVEL: 'loud' }, /LOG_LEVEL/],
    [{ MAX_PAGE_SIZE: '0' }, /MAX_PAGE_SIZE: must be greater than 0/],
    [{ AUTH_TOKENS: 'alice:superuser:alice-secret-1' }, /AUTH_TOKENS: entry 1 must look like userId:role:token/],
    [{ AUTH_TOKENS: 'alice:user:short' }, /AUTH_TOKENS: entry 1: token must be at least 8 characters/],
    [{ HOST: '0.0.0.0' }, /HOST: without AUTH_TOKENS, AUTH_JWT_\* or AUTH_USER_HEADER/],
    [{ AUTH_JWT_SECRET: 'too-short' }, /AUTH_JWT_SECRET: must be at least 32 characters/],
    [{ AUTH_JWT_SECRET: 'x'.repeat(32), AUTH_JWT_JWKS_FILE: 'keys.json' }, /set only one of AUTH_JWT_SECRET/],
    [{ CORS_ORIGINS: 'https://ok.example,evil.example/path' }, /CORS_ORIGINS: evil.example\/path is not an origin/],
    [{ MAX_CONNECTIONS_PER_USER: '0' }, /MAX_CONNECTIONS_PER_USER: must be greater than 0/],
    // Past Node's longest timer a periodic job would run back to back (its timer fires after 1 ms).
    [{ STATUS_CORRECTION_INTERVAL_MS: '3000000000' }, /STATUS_CORRECTION_INTERVAL_MS: must be at most 2147483647/],
    [{ WEBHOOK_CATCH_UP_INTERVAL_MS: '2147483648' }, /WEBHOOK_CATCH_UP_INTERVAL_MS: must be at most 2147483647/],
  ])('%o is refused with a message naming the variable', (env, message) => {
    expect(() => loadConfig(env)).toThrow(ConfigError);
    expect(() => loadConfig(env)).toThrow(message);
  });

  test('a rejected AUTH_TOKENS entry is not echoed (it holds a secret)', () => {
    expect(() => loadConfig({ AUTH_TOKENS: 'alice:root:my-very-secret' })).toThrow(
      expect.objectContaining({ message: expect.not.stringContaining('my-very-secret') }),
    );
  });

  test('payment pushes need their signing key, and the wallet pushes the public address the wallet answers to', () => {
    const wallet = { PAYMENT_WALLET_PUSH_URL: 'https://wallet.example.com/push' };
    expect(() => loadConfig({ ...wallet, PUBLIC_BASE_URL: 'https://market.example.com' })).toThrow(
      'PAYMENT_PUSH_SECRET: required with PAYMENT_WALLET_PUSH_URL or PAYMENT_FRONTEND_PUSH_URL',
    );
    expect(() => loadConfig({ ...wallet, PAYMENT_PUSH_SECRET: 's'.repeat(16) })).toThrow(
      'PUBLIC_BASE_URL: required with PAYMENT_WALLET_PUSH_URL',
    );
    const config = loadConfig({
      ...wallet,
      PAYMENT_PUSH_SECRET: 's'.repeat(16),
      PUBLIC_BASE_URL: 'https://market.example.com/store/',
    });
    expect(config.publicBaseUrl).toBe('https://market.example.com/store');
    expect(config.payments.pushes).toEqual({
      walletUrl: 'https://wallet.example.com/push',
      frontendUrl: null,
      secret: 's'.repeat(16),
    });
    // Without pushes the default address is the one the server listens on.
    expect(loadConfig({ PORT: '4100' }).publicBaseUrl).toBe('http://127.0.0.1:4100');
  });

  test('binding beyond loopback is allowed once authentication is configured', () => {
    expect(loadConfig({ HOST: '0.0.0.0', AUTH_USER_HEADER: 'X-Bfl-User' }).host).toBe('0.0.0.0');
    expect(loadConfig({ HOST: '0.0.0.0', AUTH_JWT_SECRET: 'x'.repeat(32) }).auth.localDevelopment).toBe(false);
  });

  test('the server process exits non-zero with a clear message on a bad value', () => {
    const result = spawnSync(process.execPath, ['--import', 'tsx', 'src/index.ts'], {
      env: { ...process.env, PORT: 'abc' },
      encoding: 'utf8',
      timeout: 20_000,
    });
    expect(result.status).toBe(1);
    expect(result.stderr).toContain('Invalid configuration');
    expect(result.stderr).toContain('PORT: must be a number');
  });
});
