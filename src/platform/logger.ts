import { format } from 'node:util';
import pino from 'pino';
import { isColorSupported, prettyFactory } from 'pino-pretty';
import { redactSecrets } from './redact.js';

export type Logger = pino.Logger;

/** `pretty`: readable lines for a person at a terminal; `json`: one object per line, for collectors. */
export type LogFormat = 'pretty' | 'json';

/** Where the log goes and how it reads. */
export interface LogOutput {
  /** @default json */
  format?: LogFormat;
  /** Where the lines are written. @default standard output */
  destination?: pino.DestinationStream;
}

/** Longest error message or stack a log line keeps: an upstream body quoted in an error is not a log line's business. */
const MAX_ERROR_TEXT = 4_000;

/**
 * Structured logs, as JSON lines or, for a terminal, pretty-printed. Anything that may carry a
 * secret is redacted by path, so a careless `logger.info({ headers })` cannot leak a token:
 * credentials and signatures, env values (an operation's envs carry the buyer's credential), and
 * the upstream data an app-service error carries. Error messages and stacks are cleaned of known
 * and secret-shaped values too, since an error may quote what it failed on (src/platform/redact.ts).
 */
export function createLogger(level: string, output: pino.DestinationStream | LogOutput = {}): Logger {
  const { format = 'json', destination } = 'write' in output ? { destination: output } : output;
  return pino(
    {
      level,
      base: { service: 'market-runtime-graphql' },
      redact: {
        paths: [
          'authorization',
          '*.authorization',
          'headers.authorization',
          'req.headers.authorization',
          'headers["x-authorization"]',
          '*.headers["x-authorization"]',
          'headers.cookie',
          '*.headers.cookie',
          'token',
          '*.token',
          'secret',
          '*.secret',
          'password',
          '*.password',
          'jws',
          '*.jws',
          'vc',
          '*.vc',
          'signature',
          '*.signature',
          'envs[*].value',
          '*.envs[*].value',
          '*.*.envs[*].value',
          'details.data',
          'err.details.data',
        ],
        censor: '[redacted]',
      },
      serializers: { err: serializeError },
    },
    format === 'pretty' ? prettyDestination(destination) : destination,
  );
}

/**
 * pino-pretty run in this process on each JSON line pino has produced (after redaction and the
 * error serialiser, so the pretty output hides what the JSON hides), written synchronously: a
 * worker-thread transport would lose the last lines when the process exits right after them.
 */
function prettyDestination(destination: pino.DestinationStream | undefined): pino.DestinationStream {
  const format = prettyFactory({
    colorize: destination ? false : isColorSupported,
    translateTime: 'SYS:HH:MM:ss.l',
    ignore: 'pid,hostname,service',
  });
  const target = destination ?? pino.destination({ dest: 1, sync: true });
  return { write: (line: string) => target.write(format(line)) };
}

function serializeError(error: unknown): unknown {
  if (typeof error === 'string') return clean(error);
  const serialized = pino.stdSerializers.err(error as Error) as unknown;
  if (typeof serialized !== 'object' || serialized === null) return serialized;
  const fields = serialized as { message?: unknown; stack?: unknown };
  if (typeof fields.message === 'string') fields.message = clean(fields.message);
  if (typeof fields.stack === 'string') fields.stack = clean(fields.stack);
  return serialized;
}

/** Bounded, then redacted, then cut to length: a piece of a secret left at the first cut is still recognised. */
function clean(text: string): string {
  return redactSecrets(text.slice(0, 2 * MAX_ERROR_TEXT)).slice(0, MAX_ERROR_TEXT);
}

/**
 * Node prints process warnings (our own emitWarning calls, a library's notice such as pg's about
 * `sslmode=require`, a deprecation) as several lines of text on stderr: in a JSON log those are
 * lines no collector reads. Node's printer is a 'warning' listener; it is replaced by one that
 * writes each warning as one log line, cleaned like an error message.
 */
export function logProcessWarnings(logger: Logger): void {
  // A library's notice printed with console.warn is a warning line too: ioredis prints `Skipping
  // the ready check because INFO command fails: "NOPERM …"` as plain text when an ACL refuses INFO.
  // (Turning its ready check off instead left a connection that closed while connecting `ready`
  // with no socket, for good: test/leader.test.ts's lease never led again.)
  console.warn = (...args: unknown[]) => logger.warn({ source: 'console.warn' }, clean(format(...args)));
  process.removeAllListeners('warning');
  // An operator who turned Node's warnings off (NODE_NO_WARNINGS=1, --no-warnings) gets none as log lines either.
  if (warningsSilenced()) return;
  process.on('warning', (warning: Error & { code?: string }) => {
    logger.warn({ warning: { name: warning.name, code: warning.code } }, clean(warning.message));
  });
}

/** Node's own test for printing warnings: the variable, or the flag on the command line or in NODE_OPTIONS. */
function warningsSilenced(): boolean {
  if (process.env.NODE_NO_WARNINGS === '1') return true;
  const flags = [...process.execArgv, ...(process.env.NODE_OPTIONS ?? '').split(/\s+/)];
  return flags.includes('--no-warnings');
}
