import { tmpdir } from 'node:os';
import { describe, expect, test } from 'vitest';
import { ConfigError, loadConfig } from '../src/platform/config.js';

/** The one line a refused environment prints, or null when it is accepted. */
function refusal(env: NodeJS.ProcessEnv): string | null {
  try {
    loadConfig(env);
    return null;
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    return error.message;
  }
}

describe('settings accepted before and then ignored or failing later are refused at start', () => {
  test('a PostgreSQL DATABASE_URL with ?schema= other than public (the tables went into public anyway)', () => {
    expect(refusal({ DATABASE_URL: 'postgresql://market:db-pass-7731@db/market?schema=tenant_a' })).toBe(
      'Invalid configuration:\n  DATABASE_URL: has a schema parameter (?schema=…), which is not supported: the tables are in the public schema, so give each deployment a database of its own',
    );
    // Prisma's documented default is what the server does: still accepted.
    expect(refusal({ DATABASE_URL: 'postgresql://market@db/market?schema=public&sslmode=verify-full' })).toBeNull();
  });

  test('a PostgreSQL DATABASE_URL with Prisma pool parameters, which the pool (pg) never read', () => {
    const refused =
      "Invalid configuration:\n  DATABASE_URL: has ?connection_limit=… or ?pool_timeout=…, which this server does not read (its pool is pg's, not Prisma's): size the pool with DATABASE_POOL_SIZE and leave them out";
    expect(refusal({ DATABASE_URL: 'postgresql://market@db/market?connection_limit=40' })).toBe(refused);
    expect(refusal({ DATABASE_URL: 'postgresql://market@db/market?sslmode=require&pool_timeout=20' })).toBe(refused);
    const sized = loadConfig({ DATABASE_URL: 'postgresql://market@db/market', DATABASE_POOL_SIZE: '40' });
    expect(sized.databasePoolSize).toBe(40);
    expect(loadConfig({}).databasePoolSize).toBe(10);
  });

  test('a PostgreSQL DATABASE_URL with a search_path in ?options= (the way around the ?schema= refusal)', () => {
    const refused =
      'Invalid configuration:\n  DATABASE_URL: sets a search_path in ?options=, which is not supported: the tables are in the public schema, so give each deployment a database of its own';
    for (const options of [
      '-c%20search_path%3Dtenant1',
      '-csearch_path%3Dtenant1',
      '--search-path%3Dtenant1',
      '-c%20SEARCH_PATH%3Dx',
    ]) {
      expect(refusal({ DATABASE_URL: `postgresql://market@db/market?options=${options}` }), options).toBe(refused);
    }
    // Other run-time settings in options are PostgreSQL's to take.
    expect(refusal({ DATABASE_URL: 'postgresql://market@db/market?options=-c%20statement_timeout%3D5000' })).toBeNull();
  });

  test('a PostgreSQL DATABASE_URL whose pgbouncer parameter is neither true nor false', () => {
    expect(refusal({ DATABASE_URL: 'postgresql://market@db/market?pgbouncer=yes' })).toBe(
      'Invalid configuration:\n  DATABASE_URL: has a pgbouncer parameter that is neither true nor false: write ?pgbouncer=true behind PgBouncer in transaction mode, or leave it out',
    );
    expect(refusal({ DATABASE_URL: 'postgresql://market@db/market?pgbouncer=true' })).toBeNull();
    expect(refusal({ DATABASE_URL: 'postgresql://market@db/market?pgbouncer=false' })).toBeNull();
  });

  test('MAX_WAITING_BYTES below MAX_BODY_BYTES (no operation of a full-size body could ever wait)', () => {
    expect(refusal({ MAX_WAITING_BYTES: '1000', MAX_BODY_BYTES: '2000' })).toBe(
      'Invalid configuration:\n  MAX_WAITING_BYTES: 1000 is below MAX_BODY_BYTES (2000): an operation whose request is that large could never wait for a place; raise MAX_WAITING_BYTES or lower MAX_BODY_BYTES',
    );
    expect(refusal({ MAX_WAITING_BYTES: '1000' })).toContain('below MAX_BODY_BYTES (1048576)');
    expect(loadConfig({ MAX_WAITING_BYTES: '2000', MAX_BODY_BYTES: '2000' }).maxWaitingBytes).toBe(2000);
  });

  test('REDIS_URL beside a SQLite DATABASE_URL (each instance would run on a file of its own)', () => {
    expect(refusal({ REDIS_URL: 'redis://127.0.0.1:6379' })).toBe(
      'Invalid configuration:\n  REDIS_URL: cluster mode needs a PostgreSQL DATABASE_URL shared by every instance, not a SQLite file',
    );
    expect(refusal({ REDIS_URL: 'redis://127.0.0.1:6379', DATABASE_URL: 'file:./data/cluster.db' })).toMatch(
      /REDIS_URL: /,
    );
    expect(refusal({ REDIS_URL: 'redis://127.0.0.1:6379', DATABASE_URL: 'postgresql://market@db/market' })).toBeNull();
  });

  test('an APP_SERVICE_TOKEN of spaces only (the app service would see a blank credential)', () => {
    const service = { APP_SERVICE_URL: 'http://app-service.local:8080', APP_SERVICE_EVENT_SECRET: 'e'.repeat(16) };
    expect(refusal({ ...service, APP_SERVICE_TOKEN: '    ' })).toBe(
      'Invalid configuration:\n  APP_SERVICE_TOKEN: must not be blank (it is made of spaces only)',
    );
    expect(refusal({ ...service, APP_SERVICE_TOKEN: 'service-credential' })).toBeNull();
  });

  test('a token ending in a CR or a space (a CRLF .env file read by a shell): no HTTP client can send it', () => {
    const service = { APP_SERVICE_URL: 'http://app-service.local:8080', APP_SERVICE_EVENT_SECRET: 'e'.repeat(16) };
    // undici refused every app-service call carrying it (UND_ERR_INVALID_ARG), logged as "unreachable".
    expect(refusal({ ...service, APP_SERVICE_TOKEN: 'service-credential\r' })).toBe(
      'Invalid configuration:\n  APP_SERVICE_TOKEN: must not begin or end with spaces or a line end (a .env file saved with CRLF line ends?)',
    );
    // HTTP trims header values: /metrics answered 401 to every scrape.
    expect(refusal({ METRICS_TOKEN: 'metrics-token-0001 ' })).toMatch(
      /^Invalid configuration:\n {2}METRICS_TOKEN: must not begin/,
    );
    expect(refusal({ METRICS_TOKEN: 'metrics-\u0007token-0001' })).toMatch(/METRICS_TOKEN: must not contain control/);
  });

  test('a SNAPSHOT_MAX_HZ so small that its pause passes the longest timer (pushes then came every 1 ms)', () => {
    expect(refusal({ SNAPSHOT_MAX_HZ: '0.0000001' })).toBe(
      'Invalid configuration:\n  SNAPSHOT_MAX_HZ: must be at least 0.001',
    );
    expect(refusal({ SNAPSHOT_MAX_HZ: '0.001' })).toBeNull();
  });

  test('text settings are trimmed, and one of spaces only is refused (every JWT would lack its user)', () => {
    expect(loadConfig({ HOST: '127.0.0.1 ' }).host).toBe('127.0.0.1');
    const jwt = { AUTH_JWT_SECRET: 's'.repeat(32) };
    expect(refusal({ ...jwt, AUTH_JWT_USER_CLAIM: ' ' })).toMatch(/AUTH_JWT_USER_CLAIM: /);
    expect(refusal({ ...jwt, AUTH_JWT_ROLE_CLAIM: ' ' })).toMatch(/AUTH_JWT_ROLE_CLAIM: /);
    expect(refusal({ REDIS_PREFIX: '  ' })).toMatch(/REDIS_PREFIX: /);
  });

  test.each([
    ['METRICS_TOKEN', 16],
    ['AUTH_JWT_SECRET', 32],
    ['APP_SERVICE_EVENT_SECRET', 16],
    ['PAYMENT_PUSH_SECRET', 16],
  ])('a %s of spaces only (long enough, and a key anyone could guess)', (name, length) => {
    expect(refusal({ [name]: ' '.repeat(length + 4) })).toBe(
      `Invalid configuration:\n  ${name}: must not be blank (it is made of spaces only)`,
    );
    // Too short: still the one line it was.
    expect(refusal({ [name]: 'x'.repeat(length - 1) })).toBe(
      `Invalid configuration:\n  ${name}: must be at least ${length} characters`,
    );
  });

  test.each([
    [
      'https://a.com:99999',
      'https://a.com:99999 is not an origin like https://example.com[:port] (a port is at most 65535)',
    ],
    ['https://ops:cors-pass-3141@a.com', 'entry 2 has user info (user:password@), which no Origin carries'],
    ['https://ops:cors-pass-3141@a.com:99999', 'entry 2 has user info (user:password@), which no Origin carries'],
    ['https://A.example', 'https://A.example never matches: browsers send this origin as https://a.example'],
    ['https://a.example:443', 'https://a.example:443 never matches: browsers send this origin as https://a.example'],
  ])('a CORS_ORIGINS entry %s that no browser request can match', (origin, message) => {
    expect(refusal({ CORS_ORIGINS: `https://ok.example, ${origin}` })).toBe(
      `Invalid configuration:\n  CORS_ORIGINS: ${message}`,
    );
  });

  test('CORS_ORIGINS entries in the form browsers send are kept', () => {
    const origins = 'https://a.example, http://127.0.0.1:5173, http://[::1]:8080, https://xn--bcher-kva.example';
    expect(loadConfig({ CORS_ORIGINS: origins }).corsOrigins).toEqual([
      'https://a.example',
      'http://127.0.0.1:5173',
      'http://[::1]:8080',
      'https://xn--bcher-kva.example',
    ]);
  });

  test.each([
    ['PORT', '99999999999999999999', 'must be between 0 and 65535'],
    ['PORT', '-99999999999999999999', 'must be between 0 and 65535'],
    ['MAX_PAGE_SIZE', '99999999999999999999', 'must be at most 1000'],
    ['MAX_BODY_BYTES', '99999999999999999999', 'must be at most 9007199254740991'],
    ['MAX_BODY_BYTES', '9007199254740993', 'must be at most 9007199254740991'],
    ['SNAPSHOT_MAX_HZ', '99999999999999999999.5', 'must be at most 100'],
    [
      'TASK_TIMEOUT_MS',
      '99999999999999999999',
      'must be at most 2147483647 (about 24.8 days, the longest timer Node keeps)',
    ],
  ])(
    '%s=%s past what JavaScript counts exactly is one line with its bound, not "a whole number"',
    (name, value, message) => {
      expect(refusal({ [name]: value })).toBe(`Invalid configuration:\n  ${name}: ${message}`);
    },
  );

  test('a BUNDLED_CATALOGUE_FILE that cannot be read (the start only warned, and market.olares stayed empty)', () => {
    expect(refusal({ BUNDLED_CATALOGUE_FILE: '/no/such/catalogue.json' })).toBe(
      'Invalid configuration:\n  BUNDLED_CATALOGUE_FILE: /no/such/catalogue.json cannot be read (ENOENT): name a catalogue file, or off for none',
    );
    expect(refusal({ BUNDLED_CATALOGUE_FILE: tmpdir() })).toBe(
      `Invalid configuration:\n  BUNDLED_CATALOGUE_FILE: ${tmpdir()} is not a file: name a catalogue file, or off for none`,
    );
    expect(loadConfig({ BUNDLED_CATALOGUE_FILE: 'off' }).catalogue.bundledFile).toBeNull();
    expect(loadConfig({ BUNDLED_CATALOGUE_FILE: 'catalogue/bundled.json' }).catalogue.bundledFile).toBe(
      'catalogue/bundled.json',
    );
    // Unset or empty: the project's own file, as before.
    expect(loadConfig({ BUNDLED_CATALOGUE_FILE: '' }).catalogue.bundledFile).toBeUndefined();
  });
});
