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
    // No request can carry a header of that name: every request would be refused.
    [{ AUTH_USER_HEADER: 'X-Bfl User' }, /AUTH_USER_HEADER: must be an HTTP header name/],
    [{ AUTH_USER_HEADER: 'X-Bfl-User:' }, /AUTH_USER_HEADER: must be an HTTP header name/],
    // Past Node's longest timer a periodic job would run back to back (its timer fires after 1 ms).
    [{ STATUS_CORRECTION_INTERVAL_MS: '3000000000' }, /STATUS_CORRECTION_INTERVAL_MS: must be at most 2147483647/],
    [{ WEBHOOK_CATCH_UP_INTERVAL_MS: '2147483648' }, /WEBHOOK_CATCH_UP_INTERVAL_MS: must be at most 2147483647/],
    // The SQLite driver takes the whole text as the path: a file named `market.db?connection_limit=1`.
    [{ DATABASE_URL: 'file:./data/q.db?connection_limit=1' }, /DATABASE_URL: a SQLite file: URL takes no query string/],
    [{ DATABASE_POOL_SIZE: '0' }, /DATABASE_POOL_SIZE: must be greater than 0/],
    [{ DATABASE_POOL_SIZE: '1001' }, /DATABASE_POOL_SIZE: must be at most 1000/],
    // Alone, these left the server in local development mode (every request the admin).
    [{ AUTH_JWT_ISSUER: 'https://id.example' }, /AUTH_JWT_ISSUER: set, but there is no key to verify tokens with/],
    [{ AUTH_JWT_AUDIENCE: 'market' }, /AUTH_JWT_AUDIENCE: set, but there is no key to verify tokens with/],
    [{ AUTH_ADMIN_USERS: 'ops' }, /AUTH_ADMIN_USERS: names gateway users, but AUTH_USER_HEADER/],
    // Past JavaScript's last date: every cleanup failed on an invalid date.
    [{ HISTORY_RETENTION_DAYS: '200000000' }, /HISTORY_RETENTION_DAYS: must be at most 36500 \(100 years\)/],
    [{ OUTBOX_RETENTION_DAYS: '200000000' }, /OUTBOX_RETENTION_DAYS: must be at most 36500 \(100 years\)/],
    // 0 would delete every message the moment it is delivered: a webhook's deliveries always empty.
    [{ OUTBOX_RETENTION_DAYS: '0' }, /OUTBOX_RETENTION_DAYS/],
  ])('%o is refused with a message naming the variable', (env, message) => {
    expect(() => loadConfig(env)).toThrow(ConfigError);
    expect(() => loadConfig(env)).toThrow(message);
  });

  // Every one of these is fetched or POSTed to over HTTP, or handed to a wallet or the app service
  // as an address to call back: ftp:, file: or javascript: would only fail later, at the first call,
  // or reach whoever follows the link.
  test.each([
    ['APP_SERVICE_URL', { APP_SERVICE_EVENT_SECRET: 'e'.repeat(16) }],
    ['APP_SERVICE_REPO_URL', {}],
    ['PUBLIC_BASE_URL', {}],
    ['PAYMENT_WALLET_PUSH_URL', { PAYMENT_PUSH_SECRET: 's'.repeat(16), PUBLIC_BASE_URL: 'https://market.example.com' }],
    ['PAYMENT_FRONTEND_PUSH_URL', { PAYMENT_PUSH_SECRET: 's'.repeat(16) }],
    ['CHART_REPO_URL', {}],
  ])('%s takes an http(s) URL and refuses any other scheme', (name, companions) => {
    for (const url of ['http://app-service:8080/', 'https://10.0.0.5/base']) {
      expect(() => loadConfig({ ...companions, [name]: url }), url).not.toThrow();
    }
    for (const url of ['ftp://files.example.com/', 'file:///etc/passwd', 'javascript:alert(1)']) {
      expect(() => loadConfig({ ...companions, [name]: url }), url).toThrow(ConfigError);
      expect(() => loadConfig({ ...companions, [name]: url }), url).toThrow(
        `${name}: must be an absolute URL (http:// or https://)`,
      );
    }
  });

  // Paths are appended to these: a query string swallowed them (the chart repo was asked for
  // `/base?token=…/chart-repo/api/v2/status?user=…`, so never for a user), and user info in the
  // URL of a service called with credentials of its own was silently not sent; in PUBLIC_BASE_URL
  // it went to every buyer's wallet in the sign request's callback URL. A market source's are sent.
  const NOT_SENT = 'must not carry credentials (user:password@ is not sent)';
  test.each([
    ['APP_SERVICE_URL', { APP_SERVICE_EVENT_SECRET: 'e'.repeat(16) }, NOT_SENT],
    ['CHART_REPO_URL', {}, NOT_SENT],
    ['PUBLIC_BASE_URL', {}, 'must not carry credentials (user:password@): it is handed out to clients'],
  ])(
    '%s, a base URL, refuses a query string, a fragment, port 0 and a typo the URL parser reads as a host',
    (name, companions, credentialsRefused) => {
      const refused = (url: string, message: string) => {
        expect(() => loadConfig({ ...companions, [name]: url }), url).toThrow(`${name}: ${message}`);
      };
      refused('http://service.example/base?token=abc', 'must not have a query string (paths are appended to it)');
      refused('http://service.example/base#part', 'must not have a fragment (it is never sent)');
      refused('http://service.example:0/base', 'must not name port 0');
      // Read by the URL parser as http://service.example/ and called so.
      refused('http:/service.example', 'must be an absolute URL (http:// or https://)');
      refused('http:///service.example', 'must be an absolute URL (http:// or https://)');
      refused('http://reader:s3cret@service.example/base', credentialsRefused);
    },
  );

  test('MARKET_SOURCE_URL is held to the rule addMarketSource holds a base URL to, in one line naming it', () => {
    const refusal = (url: string) => {
      try {
        loadConfig({ MARKET_SOURCE_URL: url });
        return null;
      } catch (error) {
        return (error as Error).message;
      }
    };
    for (const [url, problem] of [
      // The URL parser reads these as http://x/; the setting took `http:///x`, which addMarketSource
      // refused, and the typo became the host synced from.
      ['http:///market.example', 'must be an absolute URL (http:// or https://)'],
      ['http:/x', 'must be an absolute URL (http:// or https://)'],
      ['https:market.example', 'must be an absolute URL (http:// or https://)'],
      ['http:\\\\market.example', 'must be an absolute URL (http:// or https://)'],
      ['ftp://market.example', 'must use http or https'],
      ['http://market.example/base?token=abc', 'must not have a query string (paths are appended to it)'],
      ['http://market.example/base#part', 'must not have a fragment (it is never sent)'],
      ['http://market.example:0/base', 'must not name port 0 (nothing can be reached on it)'],
      ['http://u:p%zz@127.0.0.1:4601', 'has malformed credentials (a % not followed by two hex digits)'],
      // Taken by the setting at any length, by addMarketSource at 2,048 characters once encoded.
      [`http://market.example/${'é'.repeat(1_000)}`, 'must be at most 2048 characters once encoded'],
      [`http://market.example/${'x'.repeat(2_048)}`, 'must be at most 2048 characters'],
    ]) {
      expect(refusal(url as string), url).toBe(`Invalid configuration:\n  MARKET_SOURCE_URL: ${problem}`);
    }
    // A market source's credentials are sent (Basic authentication): accepted, as by addMarketSource.
    for (const url of ['http://reader:s3cret@market.example/base', 'http://192.168.1.20:8080/market/']) {
      expect(refusal(url), url).toBeNull();
    }
  });

  test('MARKET_SOURCE_URL with credentials that do not decode stops the start (every sync would fail on them)', () => {
    expect(() => loadConfig({ MARKET_SOURCE_URL: 'http://u:p%zz@127.0.0.1:4601' })).toThrow(
      'MARKET_SOURCE_URL: has malformed credentials (a % not followed by two hex digits)',
    );
  });

  test('a proxy variable must be an http(s) URL, checked under the name undici reads first', () => {
    const message = 'must be the URL of an HTTP proxy, such as http://proxy.internal:3128';
    expect(() => loadConfig({ HTTP_PROXY: 'proxy.internal:3128' })).toThrow(`HTTP_PROXY: ${message}`);
    expect(() => loadConfig({ HTTPS_PROXY: 'socks5://proxy.internal:1080' })).toThrow(`HTTPS_PROXY: ${message}`);
    expect(() => loadConfig({ HTTP_PROXY: 'http://user:pw@proxy.internal:3128', NO_PROXY: '*' })).not.toThrow();
    // undici takes http_proxy over HTTP_PROXY: the lower-case value is the one that must be usable.
    expect(() => loadConfig({ http_proxy: '127.0.0.1:3128', HTTP_PROXY: 'http://proxy:3128' })).toThrow(message);
    expect(() => loadConfig({ https_proxy: 'https://proxy:3128', HTTPS_PROXY: 'proxy' })).not.toThrow();
  });

  test('a push URL may carry a token in its query string, not user info (which was dropped: every push got 401)', () => {
    const companions = { PAYMENT_PUSH_SECRET: 's'.repeat(16), PUBLIC_BASE_URL: 'https://market.example.com' };
    for (const name of ['PAYMENT_WALLET_PUSH_URL', 'PAYMENT_FRONTEND_PUSH_URL']) {
      expect(() => loadConfig({ ...companions, [name]: 'https://push.example/in?token=abc' })).not.toThrow();
      expect(() => loadConfig({ ...companions, [name]: 'https://user:s3cret@push.example/in' })).toThrow(
        `${name}: must not carry credentials (user:password@ is not sent; a query string is)`,
      );
    }
  });

  test('DEVELOPER_SERVICE_URL_TEMPLATE is checked whole, with a name in place, and never echoed', () => {
    const refused = (template: string, message: string) => {
      const attempt = () => loadConfig({ DEVELOPER_SERVICE_URL_TEMPLATE: template });
      expect(attempt, template).toThrow(`DEVELOPER_SERVICE_URL_TEMPLATE: ${message}`);
      expect(attempt, template).toThrow(expect.objectContaining({ message: expect.not.stringContaining('s3cret') }));
    };
    refused('http://dev:s3cret@bad host/{developer}/grant', 'must be an absolute URL (http:// or https://)');
    refused('http://dev:s3cret@dev.example/{developer}/grant', 'must not carry credentials');
    refused('https://dev.example/grant?key=s3cret', 'must contain {developer}');
    refused('ftp://dev.example/{developer}', 'must be an absolute URL (http:// or https://)');
    expect(loadConfig({ DEVELOPER_SERVICE_URL_TEMPLATE: 'https://{developer}.dev.example/grant' })).toBeTruthy();
  });

  // Number() reads " " as 0 (PORT: a random port; MUTATION_RATE_PER_S: no rate limit) and takes hex,
  // binary and exponents: a typo must stop the server, not silently change the setting.
  test.each([
    [{ PORT: ' ' }, /PORT: must be a number written in decimal digits/],
    [{ PORT: '0x10ff' }, /PORT: must be a number written in decimal digits/],
    [{ PORT: '4e3' }, /PORT: must be a number written in decimal digits/],
    [{ MUTATION_RATE_PER_S: ' ' }, /MUTATION_RATE_PER_S: must be a number written in decimal digits/],
    [{ MUTATION_RATE_PER_S: '1e1' }, /MUTATION_RATE_PER_S: must be a number written in decimal digits/],
    [{ SNAPSHOT_MAX_HZ: '0x10' }, /SNAPSHOT_MAX_HZ: must be a number written in decimal digits/],
    [{ CHANGE_LOG_RETENTION: '1e6' }, /CHANGE_LOG_RETENTION: must be a number written in decimal digits/],
    [{ TASK_TIMEOUT_MS: '0b1010' }, /TASK_TIMEOUT_MS: must be a number written in decimal digits/],
  ])('%o is refused: numbers are read only as written in decimal digits', (env, message) => {
    expect(() => loadConfig(env)).toThrow(ConfigError);
    expect(() => loadConfig(env)).toThrow(message);
  });

  test('an empty number setting takes its default, a blank one is refused, fractions are kept where allowed', () => {
    // Empty counts as unset, as for every setting (loadConfig); blank is a value, and not a number.
    expect(loadConfig({ PORT: '', MUTATION_RATE_PER_S: '' })).toMatchObject({
      port: 4000,
      mutationRateLimit: { perSecond: 10, burst: 60 },
    });
    expect(() => loadConfig({ MUTATION_RATE_PER_S: '  ' })).toThrow('MUTATION_RATE_PER_S: must be a number');
    expect(loadConfig({ PORT: '0', MUTATION_RATE_PER_S: '0.5', SNAPSHOT_MAX_HZ: '2.5' })).toMatchObject({
      port: 0,
      mutationRateLimit: { perSecond: 0.5 },
      runtime: { snapshotMaxHz: 2.5 },
    });
    expect(() => loadConfig({ MAX_PAGE_SIZE: '10.5' })).toThrow('MAX_PAGE_SIZE: must be a whole number');
    expect(() => loadConfig({ MUTATION_RATE_PER_S: '-1' })).toThrow('MUTATION_RATE_PER_S: must be 0 or more');
    // Space around the digits (a trailing blank in YAML, a CRLF env file) is not part of the number.
    expect(loadConfig({ PORT: '4001 ', MAX_PAGE_SIZE: '50\r' })).toMatchObject({ port: 4001, maxPageSize: 50 });
  });

  test('a gone instance: silent for INSTANCE_SILENCE_MS (at least three collect intervals), then kept STOPPED_COMPONENT_RETENTION_MS', () => {
    const cluster = { REDIS_URL: 'redis://127.0.0.1:6379', DATABASE_URL: 'postgresql://market@db/market' };
    expect(loadConfig(cluster).redis).toMatchObject({
      instanceSilenceMs: 30_000,
      stoppedComponentRetentionMs: 3_600_000,
    });
    // Shorter than three cycles, a live instance between two of its collects would be taken for gone.
    expect(loadConfig({ ...cluster, INSTANCE_SILENCE_MS: '1000', COLLECT_INTERVAL_MS: '2000' }).redis).toMatchObject({
      instanceSilenceMs: 6000,
    });
    expect(loadConfig({ ...cluster, STOPPED_COMPONENT_RETENTION_MS: '0' }).redis).toMatchObject({
      stoppedComponentRetentionMs: 0,
    });
    expect(() => loadConfig({ ...cluster, INSTANCE_SILENCE_MS: '0' })).toThrow('INSTANCE_SILENCE_MS');
    expect(() => loadConfig({ ...cluster, STOPPED_COMPONENT_RETENTION_MS: '-1' })).toThrow(
      'STOPPED_COMPONENT_RETENTION_MS: must be 0 or more',
    );
  });

  test('a DATABASE_URL naming an SSL file that cannot be read is refused at start, as pg would refuse it', () => {
    expect(() => loadConfig({ DATABASE_URL: 'postgresql://market@db/market?sslrootcert=/no/such/ca.pem' })).toThrow(
      'DATABASE_URL: names a file (sslcert, sslkey or sslrootcert) that cannot be read (ENOENT)',
    );
  });

  // The drivers (pg, ioredis) would fail at the first connection with a bare "Invalid URL" or
  // "URI malformed" that names no setting; the message must not repeat the URL (it holds a password).
  test.each([
    [
      'DATABASE_URL',
      'postgresql://market:db-pass-7731@127.0.0.1:99999/market',
      'db-pass-7731',
      /DATABASE_URL: is not a valid URL/,
    ],
    ['DATABASE_URL', 'postgresql://market:db-pass-%E9@db:5432/market', 'db-pass-', /DATABASE_URL: .*percent-encod/],
    ['REDIS_URL', 'redis://default:Redis%ZZ@cache:6379', 'Redis%ZZ', /REDIS_URL: .*percent-encod/],
    ['REDIS_URL', 'redis://default:redis-pass-5512@cache:99999', 'redis-pass-5512', /REDIS_URL: is not a valid URL/],
    // ioredis sent `SELECT NaN`, an error nothing caught: the process died with a stack trace.
    ['REDIS_URL', 'redis://default:redis-pass-5513@cache:6379/abc', 'redis-pass-5513', /REDIS_URL: .*not a number/],
    ['REDIS_URL', 'redis://default:redis-pass-5514@cache:6379?db=two', 'redis-pass-5514', /REDIS_URL: .*not a number/],
  ])('%s=%s the driver cannot read is refused, without echoing the password', (name, url, secret, message) => {
    expect(() => loadConfig({ [name]: url })).toThrow(ConfigError);
    expect(() => loadConfig({ [name]: url })).toThrow(message);
    expect(() => loadConfig({ [name]: url })).toThrow(
      expect.objectContaining({ message: expect.not.stringContaining(secret) }),
    );
  });

  test('DATABASE_URL and REDIS_URL are refused only where their drivers cannot read them', () => {
    // The boundary: a port past 65535 is refused, while what pg and ioredis do read (a socket
    // directory with no host, an IPv6 host, percent-encoded passwords, a database number) still starts.
    expect(() => loadConfig({ DATABASE_URL: 'postgresql://market@db.internal:65536/market' })).toThrow(
      'DATABASE_URL: is not a valid URL',
    );
    for (const url of [
      'postgresql://market:p%40ss@db.internal:5432/market?sslmode=verify-full',
      'postgres://market@/market?host=/var/run/postgresql',
      'postgresql://market:p@[::1]:5432/market',
    ]) {
      expect(loadConfig({ DATABASE_URL: url }).databaseUrl).toBe(url);
    }
    for (const url of ['redis://cache:6379/2', 'rediss://default:p%40ss@cache.internal:6380']) {
      expect(loadConfig({ REDIS_URL: url, DATABASE_URL: 'postgresql://market@db/market' }).redis?.url).toBe(url);
    }
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

test('delivered and dead outbox messages are kept 7 days unless OUTBOX_RETENTION_DAYS says otherwise, whatever the history keeps', () => {
  expect(loadConfig({}).outbox.retentionDays).toBe(7);
  const config = loadConfig({ OUTBOX_RETENTION_DAYS: '45', HISTORY_RETENTION_DAYS: '30' });
  expect(config.outbox.retentionDays).toBe(45);
  expect(config.history.retentionDays).toBe(30);
});
