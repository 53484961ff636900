import { loadConfig } from '../platform/config.js';
import { createLogger, logProcessWarnings } from '../platform/logger.js';
import { reportStartFailure } from '../platform/start-failure.js';
import { logMigrationResult, migrateOrExplain } from './migrate.js';
import { assertSqliteWritable } from './sqlite-access.js';

// `npm run db:migrate`: applies pending migrations to DATABASE_URL (SQLite by default).
// The server applies the same migrations itself before it starts (app/main.ts); the tests call
// the same migrateDatabase().
try {
  // Only the settings this job uses, checked as the server checks them: a migration job (an init
  // container, a CI step) has no need of the server's other settings, whose checks (HOST=0.0.0.0
  // without authentication) are the server's to make.
  const { DATABASE_URL, LOG_LEVEL, LOG_FORMAT } = process.env;
  const config = loadConfig({ DATABASE_URL, LOG_LEVEL, LOG_FORMAT });
  const logger = createLogger(config.logLevel, { format: config.logFormat });
  logProcessWarnings(logger);
  assertSqliteWritable(config.databaseUrl);
  logMigrationResult(logger, await migrateOrExplain(config.databaseUrl, logger));
} catch (error) {
  // A bad setting (ConfigError) or a database that cannot be migrated: one line, as `npm start` prints it.
  reportStartFailure(error);
  process.exit(1);
}
