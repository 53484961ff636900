import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { type IncomingHttpHeaders, type IncomingMessage, request } from 'node:http';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { REQUIRE_SERVICES } from './databases.js';
import { ROOT, spawnUntilReady } from './process.js';

/**
 * Debian's nginx running the shipped deploy/nginx.conf, read at test time and changed only where a
 * test machine differs from docker-compose.yml: the upstream servers are the test's instances, it
 * listens on a Unix socket in a directory of its own (no TCP port to collide with another test's),
 * and its pid, log and temporary files live in that directory.
 */

export const NGINX = process.env.NGINX_BINARY ?? '/usr/sbin/nginx';

/** Whether nginx is installed; skips loudly, or fails under REQUIRE_SERVICES=1. */
export function nginxAvailable(what: string): boolean {
  if (existsSync(NGINX)) return true;
  const message = `nginx not found at ${NGINX} (apt install nginx, or set NGINX_BINARY)`;
  if (REQUIRE_SERVICES) throw new Error(`${message}; REQUIRE_SERVICES=1 forbids skipping`);
  console.warn(`\n!!! SKIPPING ${what}: ${message}\n`);
  return false;
}

/**
 * deploy/nginx.conf for a test: `server <host>:<port> [resolve] <parameters>;` in the upstream
 * becomes `server 127.0.0.1:<port> <parameters>;` for each of `upstreamPorts` in turn (the
 * parameters, max_fails and the like, are what the tests are about), `listen 80` a Unix socket, and
 * no `resolver` (nothing to resolve, and nginx before 1.27.3 refuses `resolve`).
 */
export function nginxConfigFor(shipped: string, dir: string, upstreamPorts: number[]): string {
  const ports = [...upstreamPorts];
  const config = shipped
    .replace(/^\s*resolver\s[^;]*;\n/m, '')
    .replace(/^(\s*)server\s+[\w.-]+:\d+\s+(?:resolve\s+)?([^;]*);/gm, (_line, indent: string, parameters: string) => {
      const port = ports.shift();
      if (port === undefined)
        throw new Error('deploy/nginx.conf has more upstream servers than the test has instances');
      return `${indent}server 127.0.0.1:${port} ${parameters};`;
    })
    .replace(/^(\s*)listen\s+80;/m, `$1listen unix:${dir}/nginx.sock;`)
    .replace(
      /^http \{\n/m,
      [
        'http {',
        '  access_log off;',
        ...['client_body', 'proxy', 'fastcgi', 'uwsgi', 'scgi'].map((kind) => `  ${kind}_temp_path ${dir}/${kind};`),
        '',
      ].join('\n'),
    );
  if (ports.length > 0) throw new Error('deploy/nginx.conf has fewer upstream servers than the test has instances');
  if (!config.includes(`listen unix:${dir}/nginx.sock;`)) throw new Error('deploy/nginx.conf has no `listen 80;`');
  return `pid ${dir}/nginx.pid;\nerror_log stderr info;\n${config}`;
}

export interface NginxAnswer {
  status: number;
  headers: IncomingHttpHeaders;
  body: string;
}

export interface Nginx {
  /** Everything nginx logged (its error log, on stderr): "no live upstreams", upstreams marked down… */
  output: string[];
  /** A request through nginx; resolves with the whole answer. */
  request(method: string, urlPath: string, headers: Record<string, string>, body?: string): Promise<NginxAnswer>;
  /** A request through nginx whose answer stays open: resolves at its head; `destroy()` ends it. */
  openStream(urlPath: string, headers: Record<string, string>, body: string): Promise<IncomingMessage>;
  stop(): Promise<void>;
}

/** Starts nginx on deploy/nginx.conf (see `nginxConfigFor`) in front of instances on `upstreamPorts`. */
export async function startNginx(upstreamPorts: number[]): Promise<Nginx> {
  const dir = mkdtempSync(path.join(tmpdir(), 'nginx-test-'));
  // As root (CI) the workers run as nobody, who must reach the directory.
  chmodSync(dir, 0o755);
  const configFile = path.join(dir, 'nginx.conf');
  const shipped = readFileSync(path.join(ROOT, 'deploy/nginx.conf'), 'utf8');
  writeFileSync(configFile, nginxConfigFor(shipped, dir, upstreamPorts));
  // The master listens before it starts a worker, which then accepts what waited in the backlog.
  const { child, output, exited } = await spawnUntilReady(
    NGINX,
    ['-p', dir, '-e', 'stderr', '-c', configFile, '-g', 'daemon off;'],
    /start worker process/,
    'nginx exited before it started a worker',
  );
  const socketPath = path.join(dir, 'nginx.sock');
  const send = (method: string, urlPath: string, headers: Record<string, string>, body?: string) =>
    new Promise<IncomingMessage>((resolve, reject) => {
      const sent = request({ socketPath, method, path: urlPath, headers }, resolve);
      sent.on('error', reject);
      sent.end(body);
    });
  return {
    output,
    async request(method, urlPath, headers, body) {
      const answer = await send(method, urlPath, headers, body);
      let text = '';
      answer.setEncoding('utf8');
      for await (const chunk of answer) text += chunk;
      return { status: answer.statusCode ?? 0, headers: answer.headers, body: text };
    },
    openStream: (urlPath, headers, body) => send('POST', urlPath, headers, body),
    async stop() {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGTERM');
        await exited;
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
