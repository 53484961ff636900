import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, expect, test } from 'vitest';
import { loadConfig } from '../src/platform/config.js';
import { killLeftovers, SERVER_COMMAND, serverEnv, startProcess } from './support/process.js';

/**
 * A password written raw in DATABASE_URL or REDIS_URL, with `@` and then `/`: the URL still
 * parsed, as another one whose host and path were pieces of the password, and the start failed
 * naming them in the log. Refused at the configuration check, saying to percent-encode, quoting
 * nothing of it.
 */

afterEach(() => killLeftovers());

const RAW_DATABASE_URL = 'postgresql://appuser:p@ss/w:rd#50%?&é@127.0.0.1:41432/db';
const RAW_REDIS_URL = 'redis://:Zq9@kk/Secr3tPart@127.0.0.1:6379';
const PIECES = ['ss/w', 'w:rd', '#50', '?&', 'Zq9', 'kk/', 'Secr3tPart', 'ENOTFOUND'];
const MIGRATE_COMMAND = [process.execPath, '--import', 'tsx', 'src/db/migrate-cli.ts'];

async function outputOf(command: string[], env: Record<string, string>) {
  const started = startProcess(command, serverEnv(env.DATABASE_URL!, { LOG_FORMAT: 'json', ...env }));
  const { code } = await started.exited;
  return { code, output: started.output.join('\n') };
}

test.each([
  ['the server', 'DATABASE_URL', SERVER_COMMAND, { DATABASE_URL: RAW_DATABASE_URL }],
  ['the migrations', 'DATABASE_URL', MIGRATE_COMMAND, { DATABASE_URL: RAW_DATABASE_URL }],
  [
    'the server',
    'REDIS_URL',
    SERVER_COMMAND,
    { DATABASE_URL: 'postgresql://u@127.0.0.1:1/db', REDIS_URL: RAW_REDIS_URL },
  ],
])(
  '%s refuses a raw password in %s with a message to percent-encode it and none of its pieces',
  async (_, name, command, env) => {
    expect.assertions(2 + PIECES.length);
    const { code, output } = await outputOf(command, env);
    expect(code).toBe(1);
    expect(output).toMatch(new RegExp(`${name}: .*percent-encode its special characters`));
    for (const piece of PIECES) expect(output, piece).not.toContain(piece);
  },
);

test('the same passwords percent-encoded, and a socket directory, are accepted', () => {
  const encoded = `postgresql://appuser:${encodeURIComponent('p@ss/w:rd#50%?&é')}@127.0.0.1:41432/db`;
  expect(loadConfig({ DATABASE_URL: encoded }).databaseUrl).toBe(encoded);
  const redis = `redis://:${encodeURIComponent('Zq9@kk/Secr3tPart')}@127.0.0.1:6379`;
  expect(loadConfig({ DATABASE_URL: encoded, REDIS_URL: redis }).redis?.url).toBe(redis);
  const socket = 'postgresql://appuser:pw@/db?host=/var/run/postgresql';
  expect(loadConfig({ DATABASE_URL: socket }).databaseUrl).toBe(socket);
});

test('an @ in a query parameter value is not a raw password: user@server names, application names, certificate paths', () => {
  const certificate = path.join(mkdtempSync(path.join(tmpdir(), 'raw-password-')), 'ca@x.pem');
  writeFileSync(certificate, 'not read before connecting');
  for (const url of [
    'postgresql://app:pw@127.0.0.1:5432/market?application_name=market@prod',
    'postgresql://127.0.0.1:5432/market?user=app@myserver&password=pw',
    `postgresql://app:pw@127.0.0.1/market?sslmode=verify-full&sslrootcert=${certificate}`,
  ]) {
    expect(loadConfig({ DATABASE_URL: url }).databaseUrl, url).toBe(url);
  }
  // A raw password's piece in the query has no parameter name: still refused.
  expect(() => loadConfig({ DATABASE_URL: 'postgresql://app:p?w@rd@127.0.0.1/market' })).toThrow(/percent-encode/);
});
