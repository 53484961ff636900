import pino from 'pino';

export type Logger = pino.Logger;

/**
 * Structured JSON logs. Anything that may carry a secret is redacted by path, so a careless
 * `logger.info({ headers })` cannot leak a token.
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
          'token',
          '*.token',
          'jws',
          '*.jws',
          'vc',
          '*.vc',
        ],
        censor: '[redacted]',
      },
    },
    destination,
  );
}
