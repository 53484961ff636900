/** The process entry point: reads the environment, builds the app, listens, and stops on a signal. */
import { buildApp } from './app/build-app.js';
import { databaseProvider } from './db/client.js';
import { loadConfig } from './platform/config.js';
import { createLogger } from './platform/logger.js';

async function main() {
  const config = loadConfig();
  const logger = createLogger(config.logLevel);
  if (config.auth.localDevelopment) {
    logger.warn(
      'No AUTH_TOKENS or AUTH_USER_HEADER configured: local development mode. Every request runs as the admin user "admin"; the server binds to 127.0.0.1 only.',
    );
  }
  const app = buildApp(config, { logger });
  const { url } = await app.start();
  logger.info(
    { url: `${url}/graphql`, database: databaseProvider(config.databaseUrl) },
    'Market Runtime GraphQL API listening',
  );

  let stopping = false;
  const shutdown = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    logger.info({ signal }, 'shutting down');
    await app.stop();
    process.exit(0);
  };
  process.on('SIGTERM', () => void shutdown('SIGTERM'));
  process.on('SIGINT', () => void shutdown('SIGINT'));
}

// A bad setting (ConfigError) or a database that is not ready: one line, no stack trace.
main().catch((error) => {
  console.error(error instanceof Error ? error.message : error);
  process.exit(1);
});
