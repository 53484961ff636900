import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { chmod } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { POSTGRES_URL } from './databases.js';
import { spawnUntilReady } from './process.js';

/**
 * A PgBouncer of the test's own, between the server and the shared PostgreSQL, as production
 * deployments run one. It listens on a Unix socket in a directory of its own (no TCP port to
 * collide with another test's), logs in to PostgreSQL as POSTGRES_URL's user whatever the client
 * says (`auth_type = any`), and hands out at most `poolSize` server connections per database.
 */

export const PGBOUNCER = process.env.PGBOUNCER_BINARY ?? '/usr/sbin/pgbouncer';
export const HAVE_PGBOUNCER = existsSync(PGBOUNCER);
/** The port in the socket's name (`.s.PGSQL.6432`); nothing listens on it over TCP. */
const SOCKET_PORT = 6432;

export interface PgBouncer {
  /** `databaseUrl` (a database of the shared PostgreSQL) as reached through this PgBouncer. */
  urlOf(databaseUrl: string, parameters?: Record<string, string>): string;
  stop(): Promise<void>;
}

export async function startPgBouncer(poolMode: 'session' | 'transaction', poolSize = 2): Promise<PgBouncer> {
  const dir = mkdtempSync(path.join(tmpdir(), 'pgbouncer-test-'));
  const target = new URL(POSTGRES_URL);
  const login = [
    `host=${target.hostname}`,
    `port=${target.port || 5432}`,
    `user=${decodeURIComponent(target.username || 'postgres')}`,
    ...(target.password ? [`password=${decodeURIComponent(target.password)}`] : []),
  ].join(' ');
  const ini = path.join(dir, 'pgbouncer.ini');
  writeFileSync(
    ini,
    [
      '[databases]',
      `* = ${login}`,
      '[pgbouncer]',
      'listen_addr =',
      `listen_port = ${SOCKET_PORT}`,
      `unix_socket_dir = ${dir}`,
      'auth_type = any',
      `pool_mode = ${poolMode}`,
      `default_pool_size = ${poolSize}`,
      'max_client_conn = 500',
    ].join('\n'),
  );
  // PgBouncer refuses to run as root (a CI container): it then runs as nobody, who must reach the socket's directory.
  const asRoot = process.getuid?.() === 0;
  if (asRoot) await chmod(dir, 0o777);
  const { child, exited } = await spawnUntilReady(
    PGBOUNCER,
    [...(asRoot ? ['-u', 'nobody'] : []), ini],
    /process up/,
    'pgbouncer exited before it listened',
  );
  return {
    urlOf(databaseUrl, parameters = {}) {
      // The host pg reads is the `host` parameter (the socket's directory); the URL's own host only keeps it a valid URL.
      const url = new URL(databaseUrl);
      url.host = 'localhost';
      url.search = new URLSearchParams({ host: dir, port: String(SOCKET_PORT), ...parameters }).toString();
      return url.toString();
    },
    async stop() {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGINT');
        await exited;
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
