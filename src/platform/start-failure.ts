import pino from 'pino';
import { createLogger } from './logger.js';

/**
 * How a start that failed is told: a bad setting (ConfigError), a port in use (ListenError), a
 * database or Redis out of reach. One line, no stack trace, then exit code 1 (the callers'). With
 * LOG_FORMAT=json it is a JSON log entry at level fatal, written where every other entry goes
 * (standard output): a log collector that parses each line as JSON could not read the plain text.
 * Otherwise it is the message itself on standard error, for the person at the terminal.
 *
 * Read from the raw environment, since the failure may be the settings themselves; `auto` stays
 * plain text even where it would pick JSON for the log, so a collector asks for JSON explicitly.
 */
export function reportStartFailure(error: unknown, env: NodeJS.ProcessEnv = process.env): void {
  if (env.LOG_FORMAT?.trim() !== 'json') {
    console.error(error instanceof Error ? error.message : error);
    return;
  }
  const message = error instanceof Error ? error.message : String(error);
  // Level fatal whatever LOG_LEVEL says (even `silent`, or a level it refused); synchronous, since
  // the process exits right after.
  createLogger('fatal', { format: 'json', destination: pino.destination({ dest: 1, sync: true }) }).fatal(message);
}
