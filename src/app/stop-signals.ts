/**
 * SIGTERM and SIGINT, handled from the process's first moment. In a container node is PID 1, and
 * the kernel drops a signal PID 1 has no handler for: with the handlers installed only once the
 * port was bound (after loading every module, reading the config and building the app, seconds
 * under contention), a `docker stop` or a pod deletion during that time was ignored, and the server
 * migrated and served until a second SIGTERM. This module imports nothing, so that the entry point
 * can install them before it loads the rest.
 */

export type StopHandler = (signal: NodeJS.Signals) => void;

export interface StopSignals {
  /** Who handles the next SIGTERM or SIGINT from now on. */
  onStop(handler: StopHandler): void;
}

/**
 * Installs the handlers. Until `onStop` names another, a signal ends the process at once with
 * exit code 0: nothing has started that a stop would have to stop.
 */
export function installStopSignals(): StopSignals {
  let current: StopHandler = () => process.exit(0);
  process.on('SIGTERM', () => current('SIGTERM'));
  process.on('SIGINT', () => current('SIGINT'));
  return {
    onStop(handler) {
      current = handler;
    },
  };
}
