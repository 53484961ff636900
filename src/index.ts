/**
 * The process entry point: reads the environment, binds the port, migrates the database, starts
 * the app, and stops it on SIGTERM or SIGINT. `npm start` runs this file as the only process
 * (`node --import tsx`, no shell or npm left in between to swallow the signal).
 */
import { logStartBanner } from './app/banner.js';
import { buildApp, StartAbandoned } from './app/build-app.js';
import { logMigrationResult, migrateOrExplain } from './db/migrate.js';
import { loadConfig } from './platform/config.js';
import { createLogger, logProcessWarnings } from './platform/logger.js';

async function main() {
  const config = loadConfig();
  const logger = createLogger(config.logLevel, { format: config.logFormat });
  logProcessWarnings(logger);
  const app = buildApp(config, { logger });
  // First, so that a port in use is the only thing that happens: nothing migrated, nothing started.
  await app.listen();

  let stopping = false;
  const shutdown = async (signal: NodeJS.Signals) => {
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
  };
  process.on('SIGTERM', () => void shutdown('SIGTERM'));
  process.on('SIGINT', () => void shutdown('SIGINT'));

  if (config.auth.localDevelopment) {
    logger.warn(
      'No AUTH_TOKENS, AUTH_JWT_* or AUTH_USER_HEADER configured: local development mode. Every request runs as the admin user "admin"; the server binds to a loopback address only (HOST).',
    );
  }
  const migrated = await migrateOrExplain(config.databaseUrl);
  logMigrationResult(logger, migrated);
  if (stopping) return; // a stop during the migrations: shutdown() ends the process
  const running = await app.start().catch((error: unknown) => {
    if (error instanceof StartAbandoned) return null; // shutdown() stops what started and ends the process
    throw error;
  });
  if (running) logStartBanner(logger, config, running);
}

// A bad setting (ConfigError), a port in use (ListenError) or a database that is not ready: one
// line, no stack trace.
main().catch((error) => {
  console.error(error instanceof Error ? error.message : error);
  process.exit(1);
});
