/**
 * The environment of a benchmark's server process that holds many subscribers: local development
 * mode (no AUTH_* variable, so every connection is the one local admin), a free port on loopback,
 * silent logs, an instant simulated app service, the poll-only collector cycle set to an hour (so no
 * COMPONENT_CHANGED event lands in a measured window), and the per-user and total connection caps
 * (and the per-user cap of distinct subscriptions) lifted. Passed to loadConfig as it is, never merged with process.env: a stray AUTH_* variable
 * would leave local mode.
 */
export const SUBSCRIBER_SERVER_ENV = {
  HOST: '127.0.0.1',
  PORT: '0',
  LOG_LEVEL: 'silent',
  SIMULATED_STEP_MS: '0',
  COLLECT_INTERVAL_MS: '3600000',
  MAX_CONNECTIONS_PER_USER: '1000000',
  MAX_DISTINCT_SUBSCRIPTIONS_PER_USER: '1000000',
  MAX_OPERATIONS_IN_FLIGHT_PER_USER: '1000000',
  MAX_CONNECTIONS: '1000000',
} as const;

/**
 * The environment of a G1 query server (bench/g1-servers.ts, and bench/lib/metrics-server.ts's
 * G1 roles): local development mode on a free loopback port, silent logs, an instant simulated
 * app service, no mutation rate limit (this keeps a mutation of a future query set from being
 * refused) and no bound on one user's operations in flight: the load's 50 connections are one
 * user here, 50 users in production. Passed to loadConfig as it is, as above.
 */
export function g1ServerEnv(databaseUrl: string, demoData: boolean): Record<string, string> {
  return {
    DATABASE_URL: databaseUrl,
    HOST: '127.0.0.1',
    PORT: '0',
    LOG_LEVEL: 'silent',
    DEMO_DATA: demoData ? '1' : '0',
    SIMULATED_STEP_MS: '0',
    MUTATION_RATE_PER_S: '0',
    MAX_OPERATIONS_IN_FLIGHT_PER_USER: '1000000',
  };
}
