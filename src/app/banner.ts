import { NO_DEVELOPER_SERVICE } from '../adapters/developer-service/none.js';
import { databaseShown } from '../db/client.js';
import type { Config } from '../platform/config.js';
import type { Logger } from '../platform/logger.js';
import { hostOf } from '../platform/redact.js';
import type { RunningApp } from './http-server.js';

/** The message of the start-up entry; tests and scripts wait for it. */
export const LISTENING = 'Market Runtime GraphQL API listening';

/**
 * What a started server tells whoever started it: where to point a browser and how it runs.
 * Built from the configuration alone and never from a URL's user or password, so no secret can
 * reach it.
 */
export interface StartBanner {
  /** The GraphQL endpoint, at the address actually bound (port 0 resolved). */
  url: string;
  /** GraphiQL's address, or null when GRAPHIQL is off. */
  graphiql: string | null;
  dashboard: string;
  /** Who the requests run as: local development, API tokens, a gateway header, JWTs. */
  mode: string;
  database: string;
  /** Single process, or the Redis host and this instance's name. */
  cluster: string;
  appService: string;
  /** Simulated (grants every purchase), the template's address, or none (purchases refused). */
  developerService: string;
  demoData: boolean;
}

export function startBanner(config: Config, running: RunningApp): StartBanner {
  return {
    url: `${running.url}/graphql`,
    graphiql: config.graphiql ? `${running.url}/graphql` : null,
    dashboard: `${running.url}/dashboard`,
    mode: authMode(config.auth),
    database: databaseShown(config.databaseUrl),
    cluster: config.redis
      ? `Redis at ${redisShown(config.redis.url)}, instance ${config.redis.instance}`
      : 'single process (no REDIS_URL)',
    appService:
      config.appService.kind === 'simulated'
        ? `simulated (${config.appService.stepMs} ms per step)`
        : withoutCredentials(config.appService.url),
    developerService: developerServiceShown(config.payments.developerService),
    demoData: config.demoData,
  };
}

/** Redis's host, whether over TLS (`rediss://`) and which database (`/2`; 0 unsaid), never a credential. */
function redisShown(url: string): string {
  const database = Number(URL.canParse(url) ? new URL(url).pathname.slice(1) || 0 : 0);
  return `${hostOf(url)}${url.startsWith('rediss:') ? ' over TLS' : ''}${database ? `, database ${database}` : ''}`;
}

/**
 * One entry: in JSON its fields, for collectors and scripts; pretty-printed, a few aligned lines
 * a person reads at a glance (the fields would only repeat them).
 */
export function logStartBanner(logger: Logger, config: Config, running: RunningApp): void {
  const banner = startBanner(config, running);
  if (config.logFormat === 'json') {
    logger.info(banner, LISTENING);
    return;
  }
  const rows: [string, string][] = [
    ['GraphQL', banner.url],
    ['GraphiQL', banner.graphiql ? `${banner.graphiql} (open it in a browser)` : 'off (GRAPHIQL)'],
    ['Dashboard', banner.dashboard],
    ['Mode', banner.mode],
    ['Database', banner.database],
    ['Cluster', banner.cluster],
    ['App service', banner.appService],
    ['Developer', banner.developerService],
    ['Demo data', banner.demoData ? 'on (DEMO_DATA)' : 'off'],
  ];
  logger.info([LISTENING, ...rows.map(([name, value]) => `  ${name.padEnd(12)} ${value}`)].join('\n'));
}

/**
 * The warning a start logs beside the banner when an outside service is simulated or missing:
 * installs that install nothing and purchases granted to anyone (or refused) should not go unseen.
 */
export function simulatedServicesWarning(config: Config): string | null {
  const simulated = [
    ...(config.appService.kind === 'simulated' ? ['the app service (APP_SERVICE_URL unset): installs nothing'] : []),
    ...(config.payments.developerService.kind === 'simulated'
      ? ['the developer service (DEVELOPER_SERVICE_URL_TEMPLATE unset): grants every purchase']
      : []),
  ];
  const lines = simulated.length ? [`Simulated: ${simulated.join('; ')}.`] : [];
  if (config.payments.developerService.kind === 'none') lines.push(`${NO_DEVELOPER_SERVICE}.`);
  return lines.length ? lines.join(' ') : null;
}

function developerServiceShown(service: Config['payments']['developerService']): string {
  if (service.kind === 'simulated') return 'simulated: grants every purchase';
  if (service.kind === 'none') return 'none: purchases are refused (DEVELOPER_SERVICE_URL_TEMPLATE)';
  // The placeholder may stand in the host name, where URL would not take its braces.
  const marker = 'developer-placeholder';
  return withoutCredentials(service.urlTemplate.replaceAll('{developer}', marker)).replaceAll(marker, '{developer}');
}

function authMode(auth: Config['auth']): string {
  if (auth.localDevelopment) {
    return 'local development: every request is the admin "admin", bound to loopback only';
  }
  const modes: string[] = [];
  if (auth.tokens.length) modes.push(`API tokens (${auth.tokens.length})`);
  if (auth.userHeader) modes.push(`gateway header ${auth.userHeader} (${auth.adminUsers.length} admin users)`);
  if (auth.jwt) modes.push(`JWT${auth.jwt.issuer ? ` from issuer ${auth.jwt.issuer}` : ''}`);
  return modes.join(' + ');
}

/** The URL with no user, password, query or fragment: those may carry a credential. */
function withoutCredentials(url: string): string {
  try {
    const parsed = new URL(url);
    return `${parsed.origin}${parsed.pathname}`;
  } catch {
    return 'an unreadable URL';
  }
}
