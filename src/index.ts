/**
 * The process entry point: installs the SIGTERM and SIGINT handlers, then loads and runs the
 * server (app/main.ts). `npm start` runs this file as npm's child (`exec node --import tsx`: the
 * exec leaves no shell in between; npm stays the parent and forwards SIGTERM and SIGINT); the image
 * runs `node dist/index.js` as PID 1.
 */
import { installStopSignals } from './app/stop-signals.js';

// Before anything else is loaded: loading the server's modules takes a second or more, and a PID 1
// without a handler drops the SIGTERM that arrives meanwhile (app/stop-signals.ts).
const signals = installStopSignals();

// A bad setting (ConfigError), a port in use (ListenError) or a database that is not ready: one
// line, no stack trace (platform/start-failure.ts), plain or JSON by LOG_FORMAT.
import('./app/main.js')
  .then(({ main }) => main(signals))
  .catch(async (error: unknown) => {
    const { reportStartFailure } = await import('./platform/start-failure.js');
    reportStartFailure(error);
    process.exit(1);
  });
