import type { IncomingMessage, Server } from 'node:http';
import { WebSocketServer } from 'ws';
import type { Authenticator } from '../auth/viewer.js';
import { UnauthenticatedError } from '../domain/errors.js';
import { SubscriptionCohorts } from '../fanout/cohorts.js';
import { type OriginPolicy, originRefusal, shown } from '../http/cross-site.js';
import { domainErrorBody } from '../http/graphql-errors.js';
import { requestIdFor } from '../http/request-notes.js';
import type { Config } from '../platform/config.js';
import type { Logger } from '../platform/logger.js';
import { ConnectionBudget } from '../transports/connection-budget.js';
import { SseTransport } from '../transports/sse-transport.js';
import { WsTransport } from '../transports/ws-transport.js';
import { type GraphQLServer, operationPipeline } from './graphql.js';
import { settledBy } from './http-server.js';
import type { AppMetrics } from './metrics.js';
import { loggedOperationName, type TrackedRequest } from './request-log.js';

export interface LiveDeps {
  config: Config;
  logger: Logger;
  yoga: GraphQLServer;
  authenticator: Authenticator;
  origins: OriginPolicy;
  /** The HTTP server whose upgrades to /graphql become graphql-ws connections. */
  server: Server;
  /** Resolves once the app has started: upgrades wait for it (the port is bound first). */
  serving: Promise<void>;
  /** Subscriptions, deliveries and slow consumers per transport; null: not counted. */
  metrics: AppMetrics | null;
}

/** WebSocket connections, SSE streams, subscription cohorts and subscriptions now open. */
export type SubscriptionStats = {
  connections: number;
  streams: number;
  cohorts: number;
  subscriptions: number;
};

/** Both subscription transports, with what they share. */
export interface LiveTransports {
  /** graphql-sse's distinct-connections mode; the router hands it the requests it accepts. */
  sse: SseTransport;
  /** What the `pubsub` component reports: the fan-out across both transports. */
  stats(): SubscriptionStats;
  /**
   * Ends every SSE stream and closes every WebSocket connection with 1012 (service restart), so
   * clients reconnect; connections whose closing handshake has not finished by `deadline` (epoch
   * ms) are cut.
   */
  stop(deadline: number): Promise<LiveStopSummary>;
}

/** What stopping the transports did, for the shutdown log. */
export type LiveStopSummary = { streamsEnded: number; webSocketsClosed: number; webSocketsCut: number };

/**
 * Subscribers over WebSockets and SSE with the same document, variables and scope share one
 * execution (both transports run Yoga's pipeline, so their results are the same), and one
 * connection budget.
 */
export function createLiveTransports(deps: LiveDeps): LiveTransports {
  const { config } = deps;
  const cohorts = new SubscriptionCohorts();
  const budget = new ConnectionBudget(config.connectionLimits);
  const sse = createSseTransport(deps, cohorts, budget);
  const { wss, ws } = createWsTransport(deps, cohorts, budget);
  return {
    sse,
    stats: () => ({ connections: ws.connectionCount, streams: sse.streamCount, ...cohorts.stats() }),
    async stop(deadline) {
      const streamsEnded = sse.dispose();
      const webSocketsClosed = wss.clients.size;
      const wsClosed = ws.dispose();
      const inTime = await settledBy(wsClosed, deadline);
      const webSocketsCut = inTime ? 0 : wss.clients.size;
      for (const client of wss.clients) client.terminate();
      await wsClosed;
      return { streamsEnded, webSocketsClosed, webSocketsCut };
    },
  };
}

function createSseTransport(deps: LiveDeps, cohorts: SubscriptionCohorts, budget: ConnectionBudget): SseTransport {
  const { config, logger, yoga, authenticator } = deps;
  return new SseTransport({
    authenticate: async (req: TrackedRequest) => {
      const viewer = await authenticator.fromHeaders(req.headers);
      req.userId = viewer.userId; // for the log line of a stream refused later (its body, its document)
      return viewer;
    },
    pipeline: (params, viewer, req) => operationPipeline(yoga, { params, viewer, req }),
    cohorts,
    budget,
    maxBufferedBytes: config.runtime.maxBufferedBytes,
    subscriberBuffer: config.runtime.subscriberBuffer,
    keepAliveMs: config.runtime.keepAliveMs,
    maxBodyBytes: config.maxBodyBytes,
    errorBody: domainErrorBody,
    ...(deps.metrics ? { metrics: deps.metrics.flow('sse') } : {}),
    identify: (req: TrackedRequest, viewer, operationName) => {
      req.userId = viewer.userId;
      req.operationName = loggedOperationName(operationName);
    },
    logger: logger.child({ component: 'sse' }),
  });
}

/** graphql-transport-ws on /graphql, through Yoga's envelop pipeline (same schema, plugins, context). */
function createWsTransport(deps: LiveDeps, cohorts: SubscriptionCohorts, budget: ConnectionBudget) {
  const { config, yoga, origins, server, serving } = deps;
  const logger = deps.logger.child({ component: 'graphql-ws' });
  const wss = new WebSocketServer({
    server,
    path: yoga.graphqlEndpoint,
    // ws refuses a larger frame from its header (close 1009) before reading it.
    maxPayload: config.maxBodyBytes,
    // Browsers always send Origin on an upgrade: pages of other sites may not connect. A refusal
    // is an answer to an HTTP request the router never sees: logged here, as the router would.
    verifyClient: ({ req }: { req: IncomingMessage }, done: VerifyDone) =>
      void serving.then(() => {
        const { origin, host } = req.headers;
        const refusal = !origins.allowsHost(host)
          ? 'Host not allowed: local development mode serves localhost only'
          : !origins.allows(origin, host)
            ? originRefusal(origin as string, host)
            : null;
        if (!refusal) return done(true);
        const requestId = requestIdFor(req);
        // Both, bounded (client input): whether a proxy rewrote Host shows only from the two.
        logger.info(
          { requestId, status: 403, reason: refusal, origin: shown(origin), host: shown(host) },
          'websocket refused',
        );
        done(false, 403, refusal, { 'x-request-id': requestId });
      }),
  });
  // The id a connection's log line carries, echoed as on every HTTP answer.
  wss.on('headers', (headers, req) => headers.push(`x-request-id: ${requestIdFor(req)}`));
  // ws re-emits the HTTP server's own errors (a port in use), which listen() reports: without a
  // listener here, each would also crash the process as an unhandled 'error' event.
  wss.on('error', () => {});
  const ws = new WsTransport(wss, {
    authenticate: socketAuthenticator(deps.authenticator),
    pipeline: (params, viewer, requestId, call) => operationPipeline(yoga, { params, viewer, requestId, call }),
    cohorts,
    budget,
    // A connection is unacknowledged for a round trip and an authentication: a tenth of
    // MAX_CONNECTIONS (2,000 by default) is room for a reconnecting crowd, not for a flood.
    maxUnacknowledged: Math.ceil(config.connectionLimits.total / 10),
    maxOperations: config.connectionLimits.perConnectionSubscriptions,
    maxBufferedBytes: config.runtime.maxBufferedBytes,
    subscriberBuffer: config.runtime.subscriberBuffer,
    keepAliveMs: config.runtime.keepAliveMs,
    connectionInitWaitMs: 3000,
    ...(deps.metrics ? { metrics: deps.metrics.flow('ws') } : {}),
    logger,
  });
  return { wss, ws };
}

type VerifyDone = (ok: boolean, status?: number, message?: string, headers?: Record<string, string>) => void;

/**
 * A WebSocket's credentials: a verified one from `connectionParams.authorization`, or the
 * upgrade request's headers (a gateway's user header, an Authorization header). A user name the
 * client writes into `connectionParams` is never an identity: no gateway sees or strips it.
 */
function socketAuthenticator(authenticator: Authenticator) {
  return (params: Record<string, unknown> | undefined, upgrade: IncomingMessage) => {
    const fromUpgrade = authenticator.credentialsOf(upgrade.headers);
    const given = params?.authorization ?? params?.Authorization;
    // A credential that is not text is refused, never read as none: `{}` or a list fell back to
    // the upgrade request's identity.
    if (given != null && typeof given !== 'string') {
      return Promise.reject(new UnauthenticatedError('connectionParams.authorization must be "Bearer <token>"'));
    }
    return authenticator.authenticate({
      authorization: typeof given === 'string' && given ? given : fromUpgrade.authorization,
      gatewayUser: fromUpgrade.gatewayUser,
    });
  };
}
