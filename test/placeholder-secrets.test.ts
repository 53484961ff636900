import { readFileSync } from 'node:fs';
import { describe, expect, test } from 'vitest';
import { parse, parseAllDocuments } from 'yaml';
import { ConfigError, loadConfig } from '../src/platform/config.js';
import { killLeftovers, SERVER_COMMAND, serverEnv, startProcess } from './support/process.js';

/**
 * The deployment examples' secrets are placeholders that fail closed: copied as they are, the
 * servers refuse to start. AUTH_TOKENS=REPLACE_ME always did (not a token list); the database
 * password REPLACE_ME did not: compose created PostgreSQL with it and the servers ran on it.
 */

const read = (file: string) => readFileSync(file, 'utf8');

/** deploy/compose.env.example as compose reads it into `.env`. */
function composeEnvExample(): Record<string, string> {
  const entries = read('deploy/compose.env.example')
    .split('\n')
    .map((line) => /^([A-Z_]+)=(.*)$/.exec(line.trim()))
    .filter((match) => match !== null)
    .map((match) => [match[1]!, match[2]!] as const);
  return Object.fromEntries(entries);
}

/** The API instances' DATABASE_URL in docker-compose.yml, with ${VAR:?…} filled from `env`. */
function composeDatabaseUrl(env: Record<string, string>): string {
  // biome-ignore lint/suspicious/noExplicitAny: parsed YAML, walked by key path.
  const compose = parse(read('docker-compose.yml'), { merge: true }) as any;
  const template = compose.services['api-1'].environment.DATABASE_URL as string;
  return template.replace(/\$\{([A-Z_]+)(?::?[?-][^}]*)?\}/g, (_, name: string) => env[name] ?? '');
}

function refusal(env: Record<string, string>): string | null {
  try {
    loadConfig(env);
    return null;
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    return error.message;
  }
}

describe('the placeholders of the deployment examples', () => {
  test('a server started with compose.env.example as it is refuses the database password with exit code 1 before anything else', async () => {
    const example = composeEnvExample();
    expect(example.POSTGRES_PASSWORD).toBe('REPLACE_ME');
    const databaseUrl = composeDatabaseUrl(example);
    expect(databaseUrl).toBe('postgresql://market:REPLACE_ME@postgres:5432/market');
    // A real token list, so that the database password is the only placeholder left.
    const server = startProcess(
      SERVER_COMMAND,
      serverEnv(databaseUrl, { AUTH_TOKENS: 'ops:admin:a-real-token-123456', HOST: '0.0.0.0' }),
    );
    try {
      const { code } = await server.exited;
      expect(code, server.output.join('\n')).toBe(1);
      const text = server.output.join('\n');
      expect(text).toContain('DATABASE_URL: has the placeholder password REPLACE_ME');
      // Nothing else happened: no log line (no port bound, no migration), and the URL is not echoed.
      expect(server.logs).toEqual([]);
      expect(text).not.toContain('postgres:5432');
    } finally {
      await killLeftovers();
    }
  }, 60_000);

  test('the Kubernetes Secret example as it is: its DATABASE_URL and AUTH_TOKENS are both refused', () => {
    const secret = parseAllDocuments(read('deploy/k8s/secret.example.yaml'))[0]!.toJS() as {
      stringData: Record<string, string>;
    };
    const message = refusal(secret.stringData);
    expect(message).toContain('DATABASE_URL: has the placeholder password REPLACE_ME');
    expect(message).toContain('AUTH_TOKENS: entry 1 must look like userId:role:token');
    // A real password, percent-encoded or not, is taken.
    expect(refusal({ ...secret.stringData, AUTH_TOKENS: 'ops:admin:a-real-token-123456' })).toContain('DATABASE_URL');
    expect(
      refusal({
        DATABASE_URL: 'postgresql://market:REPLACE%5FME2@db:5432/market',
        AUTH_TOKENS: 'ops:admin:a-real-token-123456',
      }),
    ).toBeNull();
  });
});
