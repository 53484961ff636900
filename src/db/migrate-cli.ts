import { ConfigError, loadConfig } from '../platform/config.js';
import { createLogger } from '../platform/logger.js';
import { logMigrationResult, migrateDatabase } from './migrate.js';

// `npm run db:migrate`: applies pending migrations to DATABASE_URL (SQLite by default).
// `npm start` runs it before the server; the tests call the same migrateDatabase().
try {
  const config = loadConfig();
  const logger = createLogger(config.logLevel);
  const result = await migrateDatabase(config.databaseUrl);
  logMigrationResult(logger, result);
} catch (error) {
  console.error(error instanceof ConfigError ? error.message : error);
  process.exit(1);
}
