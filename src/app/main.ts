import { logMigrationResult, migrateOrExplain } from '../db/migrate.js';
import { assertSqliteWritable } from '../db/sqlite-access.js';
import { type Config, loadConfig } from '../platform/config.js';
import { createLogger, type Logger, logProcessWarnings } from '../platform/logger.js';
import { connectionCeiling, fileHeadroom, softOpenFileLimit } from '../platform/open-files.js';
import { logStartBanner, simulatedServicesWarning } from './banner.js';
import { buildApp, StartAbandoned } from './build-app.js';
import type { StopSignals } from './stop-signals.js';

/**
 * The server's start: reads the environment, binds the port, migrates the database, starts the
 * app, and stops it on SIGTERM or SIGINT (`signals`, installed by src/index.ts before this module
 * was loaded).
 */
export async function main(signals: StopSignals) {
  const config = loadConfig();
  const logger = createLogger(config.logLevel, { format: config.logFormat });
  logProcessWarnings(logger);
  const lowered = keepConnectionsWithinOpenFiles(config);
  // Before buildApp, whose database client makes the SQLite file's directory.
  assertSqliteWritable(config.databaseUrl);
  const app = buildApp(config, { logger });
  // Until the port is bound nothing has started (no connection, no migration): a stop ends the
  // process at once.
  signals.onStop((signal) => {
    logger.info({ signal }, 'stopped before the start: nothing was started');
    process.exit(0);
  });
  // First, so that a port in use is the only thing that happens: nothing migrated, nothing started.
  await app.listen();
  lowered?.(logger); // once the port is bound, so that a port in use is still the only line

  let stopping = false;
  signals.onStop(async (signal) => {
    // npm forwards the signal a terminal already sent the whole group: the second one is the same request.
    if (stopping) return;
    stopping = true;
    try {
      await app.stop(signal);
      process.exit(0);
    } catch (error) {
      logger.error({ err: error }, 'shutdown failed');
      process.exit(1);
    }
  });

  if (config.auth.localDevelopment) {
    logger.warn(
      'No AUTH_TOKENS, AUTH_JWT_* or AUTH_USER_HEADER configured: local development mode. Every request runs as the admin user "admin"; the server binds to a loopback address only (HOST).',
    );
  }
  const migrated = await migrateOrExplain(config.databaseUrl, logger);
  logMigrationResult(logger, migrated);
  if (stopping) return; // a stop during the migrations: the stop handler ends the process
  const running = await app.start().catch((error: unknown) => {
    if (error instanceof StartAbandoned) return null; // the stop handler stops what started and ends the process
    throw error;
  });
  // A stop that began during the steps that no longer check for one (from the task engine's start
  // on): the start-up finished, the stop handler stops it, and the server never says it listened.
  if (!running || stopping) return;
  // Beside the banner, once started: a start that fails says only why.
  const simulated = simulatedServicesWarning(config);
  if (simulated) logger.warn(simulated);
  logStartBanner(logger, config, running);
}

/**
 * Lowers MAX_CONNECTIONS to what the soft open-file limit leaves (platform/open-files.ts), before
 * buildApp sizes the transports by it: beyond it a client is refused as documented (1013, HTTP 429)
 * instead of reset. Returns the warning that says so, to log once the port is bound.
 */
function keepConnectionsWithinOpenFiles(config: Config): ((logger: Logger) => void) | null {
  const limits = config.connectionLimits;
  const maxConnections = limits.total;
  const ceiling = connectionCeiling(maxConnections, config.databasePoolSize, softOpenFileLimit());
  if (ceiling.softLimit === undefined) return null;
  const softLimit = ceiling.softLimit;
  limits.total = ceiling.total;
  return (logger) =>
    logger.warn(
      {
        maxConnections,
        softOpenFileLimit: softLimit,
        headroom: fileHeadroom(softLimit, config.databasePoolSize),
        connectionLimit: ceiling.total,
      },
      `the soft open-file limit (${softLimit}, ulimit -n) leaves room for ${ceiling.total} connections, fewer than MAX_CONNECTIONS (${maxConnections}): this instance takes ${ceiling.total}. Raise the limit (docker run --ulimit nofile=65536:65536, compose ulimits, systemd LimitNOFILE; see "Open files" in the README)`,
    );
}
