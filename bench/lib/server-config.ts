/**
 * The environment of a benchmark's server process that holds many subscribers: local development
 * mode (no AUTH_* variable, so every connection is the one local admin), a free port on loopback,
 * silent logs, an instant simulated app service, the poll-only collector cycle set to an hour (so no
 * COMPONENT_CHANGED event lands in a measured window), and the per-user and total connection caps
 * lifted. Passed to loadConfig as it is, never merged with process.env: a stray AUTH_* variable
 * would leave local mode.
 */
export const SUBSCRIBER_SERVER_ENV = {
  HOST: '127.0.0.1',
  PORT: '0',
  LOG_LEVEL: 'silent',
  SIMULATED_STEP_MS: '0',
  COLLECT_INTERVAL_MS: '3600000',
  MAX_CONNECTIONS_PER_USER: '1000000',
  MAX_CONNECTIONS: '1000000',
} as const;
