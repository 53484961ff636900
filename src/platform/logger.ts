import pino from 'pino';
import { redactSecrets } from './redact.js';

export type Logger = pino.Logger;

/** Longest error message or stack a log line keeps: an upstream body quoted in an error is not a log line's business. */
const MAX_ERROR_TEXT = 4_000;

/**
 * Structured JSON logs. Anything that may carry a secret is redacted by path, so a careless
 * `logger.info({ headers })` cannot leak a token: credentials and signatures, env values (an
 * operation's envs carry the buyer's credential), and the upstream data an app-service error
 * carries. Error messages and stacks are cleaned of known and secret-shaped values too, since an
 * error may quote what it failed on (src/platform/redact.ts).
 */
export function createLogger(level: string, destination?: pino.DestinationStream): Logger {
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
    destination,
  );
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
