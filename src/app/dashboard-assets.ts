import { readFileSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { PersistedDocuments } from '../http/persisted-documents.js';
import type { Config } from '../platform/config.js';
import type { Logger } from '../platform/logger.js';
import { retryAfterSeconds } from '../transports/read-progress.js';

/**
 * The live dashboard's files: static pages that talk to /graphql over graphql-ws. Read once at
 * start; served by the router (routes.ts) through `dashboardRoutes`.
 */
const DASHBOARD: Record<string, { type: string; body: string }> = Object.fromEntries(
  (
    [
      ['/dashboard', 'dashboard.html', 'text/html; charset=utf-8'],
      ['/dashboard/dashboard.js', 'dashboard.js', 'text/javascript; charset=utf-8'],
      ['/dashboard/dashboard.css', 'dashboard.css', 'text/css; charset=utf-8'],
      ['/dashboard/live-client.js', 'live-client.js', 'text/javascript; charset=utf-8'],
      ['/dashboard/state.js', 'state.js', 'text/javascript; charset=utf-8'],
      ['/dashboard/documents.js', 'documents.js', 'text/javascript; charset=utf-8'],
      ['/dashboard/format.js', 'format.js', 'text/javascript; charset=utf-8'],
      ['/dashboard/controls.js', 'controls.js', 'text/javascript; charset=utf-8'],
      ['/dashboard/render-overview.js', 'render-overview.js', 'text/javascript; charset=utf-8'],
      ['/dashboard/render-tasks.js', 'render-tasks.js', 'text/javascript; charset=utf-8'],
      ['/dashboard/render-apps.js', 'render-apps.js', 'text/javascript; charset=utf-8'],
      ['/dashboard/render-activity.js', 'render-activity.js', 'text/javascript; charset=utf-8'],
      ['/dashboard/render-filters.js', 'render-filters.js', 'text/javascript; charset=utf-8'],
      ['/dashboard/render-chart-repo.js', 'render-chart-repo.js', 'text/javascript; charset=utf-8'],
      ['/dashboard/tabs.js', 'tabs.js', 'text/javascript; charset=utf-8'],
      ['/dashboard/patch-rows.js', 'patch-rows.js', 'text/javascript; charset=utf-8'],
      ['/dashboard/app-map.js', 'app-map.js', 'text/javascript; charset=utf-8'],
      ['/dashboard/app', 'app.html', 'text/html; charset=utf-8'],
      ['/dashboard/app-flow.js', 'app-flow.js', 'text/javascript; charset=utf-8'],
      ['/dashboard/app-flow-documents.js', 'app-flow-documents.js', 'text/javascript; charset=utf-8'],
      ['/dashboard/app-flow-steps.js', 'app-flow-steps.js', 'text/javascript; charset=utf-8'],
      ['/dashboard/app-flow-view.js', 'app-flow-view.js', 'text/javascript; charset=utf-8'],
      ['/dashboard/app-flow.css', 'app-flow.css', 'text/css; charset=utf-8'],
    ] as const
  ).map(([route, file, type]) => [
    route,
    { type, body: readFileSync(new URL(`../dashboard/${file}`, import.meta.url), 'utf8') },
  ]),
);

/**
 * The GraphQL documents the pages send: their scripts' template literals marked with a GraphQL
 * comment, the ones codegen.yml plucks into the persisted-documents manifest.
 */
function pageDocuments(): string[] {
  return Object.values(DASHBOARD)
    .filter(({ type }) => type.startsWith('text/javascript'))
    .flatMap(({ body }) => [...body.matchAll(/\/\* GraphQL \*\/ `([^`]*)`/g)].map((match) => match[1] as string));
}

/**
 * Under PERSISTED_DOCUMENTS the pages' documents run only if the manifest holds them. A manifest
 * made from the frontends' code alone refuses every one of them, and the operator only saw pages
 * that never loaded, each request refused PERSISTED_DOCUMENT_REQUIRED: said once at start, naming
 * what is missing and how to add it (not refused: a deployment may leave the pages unused).
 */
export function warnOfUnpersistedPages(manifest: PersistedDocuments, logger: Logger): void {
  const documents = pageDocuments();
  const missing = documents.filter((text) => !manifest.runsText(text));
  if (!missing.length) return;
  const names = missing.map((text) => /^\s*(?:query|mutation|subscription)\s+(\w+)/.exec(text)?.[1] ?? '(unnamed)');
  logger.warn(
    { missing: names },
    `PERSISTED_DOCUMENTS: the manifest lacks ${missing.length} of the dashboard pages' ${documents.length} operations, so /dashboard and its app pages will not load; generate the manifest with the pages' documents too (codegen.yml's src/dashboard/*.js)`,
  );
}

/**
 * Everything the dashboard needs comes from this server; nothing else may load. No page may frame
 * it (X-Frame-Options for browsers without frame-ancestors), and no file is read as another type
 * than it is served as. No other site learns a page's address (its filters name users and apps):
 * `same-origin` and not `no-referrer`, because the app page reads the dashboard's filters from its
 * referrer when a link to it carries no `back` (app-flow.js).
 */
const DASHBOARD_HEADERS = {
  'cache-control': 'no-cache',
  'content-security-policy':
    "default-src 'self'; connect-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; frame-ancestors 'none'",
  'x-frame-options': 'DENY',
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'same-origin',
};

/** Where a page asked for with a trailing slash is (relative: a gateway's path prefix is kept). */
const WITHOUT_SLASH: Record<string, string> = { '/dashboard/': '../dashboard', '/dashboard/app/': '../app' };

/**
 * How the pages' viewer is identified: `tokens` (a token or JWT may be typed in), `gateway` (only
 * the gateway's header: no token can work, so the page offers no form) or `local`.
 */
function authMode({ auth }: Pick<Config, 'auth'>): string {
  if (auth.localDevelopment) return 'local';
  return auth.tokens.length > 0 || auth.jwt ? 'tokens' : 'gateway';
}

type DashboardRoute = (req: IncomingMessage, res: ServerResponse) => void;

/**
 * The dashboard's routes for this server's settings. Its HTML pages say on their root element
 * what the scripts cannot find out before they connect: the authentication mode, and how long
 * (in seconds) a connection refused for a connection limit waits, as the SSE 429's Retry-After.
 */
export function dashboardRoutes(
  config: Pick<Config, 'auth'> & { runtime: Pick<Config['runtime'], 'keepAliveMs'> },
): (path: string | undefined, method: string | undefined) => DashboardRoute | undefined {
  const root = `<html lang="en" data-auth="${authMode(config)}" data-busy-retry-s="${retryAfterSeconds(config.runtime.keepAliveMs)}">`;
  const files = new Map(
    Object.entries(DASHBOARD).map(([route, { type, body }]) => {
      const bytes = Buffer.from(type.startsWith('text/html') ? body.replace('<html lang="en">', root) : body);
      const headers = { ...DASHBOARD_HEADERS, 'content-type': type, 'content-length': bytes.length };
      return [route, { headers, bytes }];
    }),
  );
  // HEAD is answered as GET, without the body (RFC 9110 §9.3.2): uptime checks use it.
  return (path, method) => {
    if (path === undefined || (method !== 'GET' && method !== 'HEAD')) return undefined;
    const file = files.get(path);
    if (file) {
      return (_req, res) => {
        res.writeHead(200, file.headers);
        res.end(method === 'HEAD' ? undefined : file.bytes);
      };
    }
    const to = WITHOUT_SLASH[path];
    if (!to) return undefined;
    return (req, res) => {
      const query = req.url?.includes('?') ? req.url.slice(req.url.indexOf('?')) : '';
      // Its length said: else a GET's empty body is sent chunked, and HEAD's headers would differ.
      res.writeHead(302, { location: `${to}${query}`, 'x-content-type-options': 'nosniff', 'content-length': 0 });
      res.end();
    };
  };
}
