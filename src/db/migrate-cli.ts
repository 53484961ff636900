import { ConfigError, loadConfig } from '../platform/config.js';
import { createLogger } from '../platform/logger.js';
import { migrateDatabase } from './migrate.js';

// `npm run db:migrate`: applies pending migrations to DATABASE_URL (SQLite by default).
// `npm start` runs it before the server; the tests call the same migrateDatabase().
try {
  const config = loadConfig();
  const logger = createLogger(config.logLevel);
  const result = await migrateDatabase(config.databaseUrl);
  logger.info(
    { provider: result.provider, applied: result.applied },
    result.applied.length ? 'migrations applied' : 'database schema is up to date',
  );
} catch (error) {
  console.error(error instanceof ConfigError ? error.message : error);
  process.exit(1);
}
