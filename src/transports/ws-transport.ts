import { isUtf8 } from 'node:buffer';
import type { IncomingMessage } from 'node:http';
import type { ExecutionResult, GraphQLError } from 'graphql';
import {
  CloseCode,
  GRAPHQL_TRANSPORT_WS_PROTOCOL,
  handleProtocols,
  MessageType,
  parseMessage,
  stringifyMessage,
} from 'graphql-ws';
import type { WebSocket, WebSocketServer } from 'ws';
import type { Viewer } from '../auth/viewer.js';
import type { Delivery, SubscriptionCohorts } from '../fanout/cohorts.js';
import { type MemberPolicy, QueuedMember } from '../fanout/member.js';
import type { Logger } from '../platform/logger.js';
import { type ConnectionBudget, limitExceeded } from './connection-budget.js';
import { onCredentialExpiry } from './credential-expiry.js';
import { type GraphQLRequest, graphQLRequest, type OperationPipeline } from './graphql-operation.js';
import { keepAliveTimer } from './keep-alive.js';
import { type FlowMetrics, type OperationCall, SubscribeFlow } from './subscribe-flow.js';
import { Connection, type Operation } from './ws-connection.js';
import { ConnectionLog } from './ws-connection-log.js';

/**
 * The graphql-transport-ws protocol (graphql-ws's, whose message types, parser and close codes
 * this uses) served over `ws`, with subscription fan-out: a subscription joins the cohort of its
 * document, variables and scope (fanout/cohorts.ts) through the flow it shares with SSE
 * (subscribe-flow.ts), and each event is one serialized payload spliced into every member's
 * `next` frame. graphql-ws's own server runs one execution and one `JSON.stringify` per subscriber
 * per event, and awaits every send, which is what this replaces. Slow consumers: see QueuedMember
 * (fanout/member.ts); a socket counts as congested past `maxBufferedBytes` unsent, and one whose
 * client stopped reading is cut (read-progress.ts).
 */

export interface WsTransportOptions {
  /**
   * The viewer of a connection, from `connection_init`'s payload and the upgrade request (which
   * carries the gateway's headers); rejects when the credentials are not accepted.
   */
  authenticate(connectionParams: Record<string, unknown> | undefined, upgrade: IncomingMessage): Promise<Viewer>;
  /**
   * The pipeline for one operation of a connection, run as its viewer, under the connection's request
   * id; `call`: the operation, which says whether its client withdrew it (a `complete`, the socket's end),
   * and its message's size.
   */
  pipeline(
    request: GraphQLRequest,
    viewer: Viewer,
    requestId: string,
    call: { readonly withdrawn: boolean; readonly bytes: number },
  ): OperationPipeline;
  /** Connections in all and per user. */
  budget: ConnectionBudget;
  /** Connections not yet acknowledged; past it the oldest of them is closed for the new one. */
  maxUnacknowledged: number;
  /** Operations (subscriptions and queries in flight) one connection may hold. */
  maxOperations: number;
  cohorts: SubscriptionCohorts;
  /** Unsent bytes a socket may hold before its subscriptions queue instead. */
  maxBufferedBytes: number;
  /** Results one subscription may have queued before it overflows. */
  subscriberBuffer: number;
  /**
   * Keep-alive period: the longest a connection goes without a write from the server (a ping when
   * nothing else); one that does not answer a ping within a period is closed.
   */
  keepAliveMs: number;
  /** How long a connection may take to send `connection_init`. */
  connectionInitWaitMs: number;
  logger: Logger;
  /** Subscriptions, refusals, member counts and stalled clients cut, for the metrics. @default not measured */
  metrics?: FlowMetrics;
}

/**
 * Close code of a connection over a limit: RFC 6455's "Try Again Later", which graphql-ws clients
 * retry with their backoff. Not 4429: graphql-ws defines it as "too many initialisation requests"
 * and its client gives up for good on it, so a frontend refused once never reconnected.
 */
const TOO_MANY = 1013;
/** RFC 6455's "invalid frame payload data" (7.4.1): what ws closes with on a text frame that is not UTF-8. */
const INVALID_PAYLOAD = 1007;
/** RFC 6455's "message too big". */
const MESSAGE_TOO_BIG = 1009;
/**
 * Bytes a connection may send before `connection_ack`, in all: its `connection_init` (a large
 * JWT is ~8 KiB) and a few pings. Unbounded, anyone could make the server read and echo pings:
 * 150 anonymous sockets sending 1 MiB pings they never read took it from 258 to 763 MB.
 */
export const MAX_BYTES_BEFORE_ACK = 16 * 1024;
/** RFC 6455's "service restart" (IANA registry): the server stops, the client should reconnect. */
const SERVICE_RESTART = 1012;

export class WsTransport {
  private readonly connections = new Set<Connection>();
  /** Connections not yet acknowledged, oldest first (a Set keeps the order they were added in). */
  private readonly unacknowledged = new Set<Connection>();
  private readonly keepAlive: NodeJS.Timeout;
  private readonly flow: SubscribeFlow;

  constructor(
    private readonly wss: WebSocketServer,
    readonly options: WsTransportOptions,
  ) {
    this.flow = new SubscribeFlow(options);
    wss.options.handleProtocols = handleProtocols;
    wss.on('connection', (socket, request) => this.open(socket, request));
    // One timer for every connection (keep-alive.ts). While bytes wait for its client, a connection
    // is judged by whether they leave (ReadProgress): pings alone kept one that read nothing but got
    // an event every period, and cut one reading slowly, its pong behind megabytes. Otherwise one
    // written to since the last tick needs nothing; one that was not is pinged, and closed if no
    // pong came a period later (Connection.keepAlive).
    this.keepAlive = keepAliveTimer(options.keepAliveMs, (periodEnd) => {
      for (const connection of this.connections) {
        const state = periodEnd ? connection.progress.check() : connection.progress.peek();
        if (state === 'stalled') {
          connection.log.cutStalled(connection.socket, connection.progress.reason(options.keepAliveMs));
          options.metrics?.clientCut('stalled');
        } else if (state === 'waiting') {
          connection.bytesWaiting();
        } else if (!connection.keepAlive()) {
          connection.log.cut(connection.socket, 'No pong within the keep-alive period');
          options.metrics?.clientCut('no_pong');
        }
      }
    });
  }

  /** Open WebSocket connections. */
  get connectionCount(): number {
    return this.connections.size;
  }

  /**
   * Closes every connection with 1012 (service restart): graphql-ws clients, browsers' included,
   * retry on it, reaching another instance or this one restarted. Resolves once every closing
   * handshake has finished.
   */
  async dispose(): Promise<void> {
    clearInterval(this.keepAlive);
    for (const connection of this.connections) connection.closeForRestart(SERVICE_RESTART, 'Service restart');
    await new Promise<void>((resolve) => this.wss.close(() => resolve()));
  }

  private open(socket: WebSocket, upgrade: IncomingMessage): void {
    const log = new ConnectionLog(upgrade);
    if (socket.protocol !== GRAPHQL_TRANSPORT_WS_PROTOCOL) {
      log.refuse(socket, this.options.logger, CloseCode.SubprotocolNotAcceptable, 'Subprotocol not acceptable');
      return;
    }
    const { budget } = this.options;
    if (!budget.tryOpen()) {
      log.refuse(socket, this.options.logger, TOO_MANY, 'Too many connections on this instance (MAX_CONNECTIONS)');
      return;
    }
    const connection = new Connection(socket, upgrade, log, this.options.maxBufferedBytes);
    this.connections.add(connection);
    this.holdUnacknowledged(connection);
    connection.initTimer = setTimeout(() => {
      connection.close(CloseCode.ConnectionInitialisationTimeout, 'Connection initialisation timeout');
    }, this.options.connectionInitWaitMs);
    socket.on('pong', () => connection.heard());
    socket.on('message', (data, isBinary) => {
      connection.heard();
      // ws refuses a text frame that is not UTF-8 (1007) but hands binary ones over as bytes, which
      // String() would decode leniently (U+FFFD in stored input): refused alike.
      if (isBinary && !isUtf8(data as Buffer)) return connection.close(INVALID_PAYLOAD, 'Message is not valid UTF-8');
      this.receive(connection, String(data)).catch((error: unknown) => {
        this.options.logger.error({ err: error }, 'graphql-ws message handling failed');
        connection.close(CloseCode.InternalServerError, 'Internal server error');
      });
    });
    socket.once('error', (error) => log.failed(socket, error));
    // `on`: ws emits 'close' once, and `once` wraps the listener in two objects per connection.
    socket.on('close', (code, reason) => {
      log.write(this.options.logger, code, reason);
      this.connections.delete(connection);
      this.unacknowledged.delete(connection);
      connection.dispose();
      budget.close();
      if (connection.viewer) budget.release(connection.viewer.userId);
    });
  }

  /**
   * A flood of sockets that never authenticate must not lock users out: past `maxUnacknowledged`
   * the oldest of them is cut (1013, which graphql-ws clients retry), not the new one refused. A
   * client that authenticates is acknowledged within a round trip of opening, so a flood would
   * have to open `maxUnacknowledged` sockets in that time to crowd it out.
   */
  private holdUnacknowledged(connection: Connection): void {
    if (this.unacknowledged.size >= this.options.maxUnacknowledged) {
      const [oldest] = this.unacknowledged;
      if (oldest) {
        this.unacknowledged.delete(oldest);
        // Cut at once: waiting for its answer would hold its MAX_CONNECTIONS slot a second more.
        oldest.log.closeAndCut(oldest.socket, TOO_MANY, 'Too many connections not yet authenticated');
      }
    }
    this.unacknowledged.add(connection);
  }

  private async receive(connection: Connection, data: string): Promise<void> {
    if (!connection.viewer && !connection.mayReadBeforeAck(Buffer.byteLength(data), MAX_BYTES_BEFORE_ACK)) {
      return connection.close(MESSAGE_TOO_BIG, `More than ${MAX_BYTES_BEFORE_ACK} bytes before connection_ack`);
    }
    let message: ReturnType<typeof parseMessage>;
    try {
      message = parseMessage(data);
    } catch (error) {
      return connection.close(CloseCode.BadRequest, (error as Error).message.slice(0, 120));
    }
    switch (message.type) {
      case MessageType.ConnectionInit: {
        if (connection.initReceived) {
          return connection.close(CloseCode.TooManyInitialisationRequests, 'Too many initialisation requests');
        }
        connection.initReceived = true;
        if (connection.initTimer) clearTimeout(connection.initTimer);
        connection.initTimer = null;
        return this.authenticate(connection, message.payload);
      }
      // Answered before `connection_ack` too: the protocol lets a ping come "at any time" and
      // requires its pong (PROTOCOL.md); what such pings may cost is bounded by MAX_BYTES_BEFORE_ACK.
      case MessageType.Ping:
        return connection.send(stringifyMessage({ type: MessageType.Pong, payload: message.payload }));
      case MessageType.Pong:
        return;
      case MessageType.Subscribe: {
        connection.log.operations += 1;
        if (!connection.viewer) return connection.close(CloseCode.Unauthorized, 'Unauthorized');
        if (connection.operations.has(message.id)) {
          return connection.close(CloseCode.SubscriberAlreadyExists, `Subscriber for ${message.id} already exists`);
        }
        const { maxOperations } = this.options;
        if (connection.operations.size >= maxOperations) {
          const limit = `A connection may hold at most ${maxOperations} operations (MAX_SUBSCRIPTIONS_PER_CONNECTION)`;
          return connection.send(errorMessage(message.id, [limitExceeded(limit)]));
        }
        const request = graphQLRequest(message.payload);
        const call = new WsCall(connection, message.id, request, this.options.pipeline, data.length);
        // Registered before anything runs, so that a `complete` while it is prepared cancels it.
        connection.operations.set(message.id, call);
        return this.flow.run(call.request, connection.viewer, call);
      }
      case MessageType.Complete: {
        const operation = connection.operations.get(message.id);
        connection.operations.delete(message.id);
        return operation?.stop();
      }
      default:
        return connection.close(CloseCode.BadRequest, `Unexpected message of type ${message.type} received`);
    }
  }

  /**
   * `connection_init`: the viewer comes from verified credentials (the payload's `authorization`,
   * or the upgrade request's headers, where a gateway puts its user header); a connection whose
   * credentials are refused, or whose user holds too many connections, is closed.
   */
  private async authenticate(connection: Connection, params: Record<string, unknown> | undefined): Promise<void> {
    let viewer: Viewer;
    try {
      viewer = await this.options.authenticate(params, connection.upgrade);
    } catch {
      return connection.close(CloseCode.Forbidden, 'Forbidden');
    }
    if (connection.socket.readyState !== connection.socket.OPEN) return;
    connection.log.userId = viewer.userId;
    if (!this.options.budget.tryClaim(viewer.userId)) {
      return connection.close(
        TOO_MANY,
        'Too many connections for this user on this instance (MAX_CONNECTIONS_PER_USER)',
      );
    }
    connection.viewer = viewer;
    this.unacknowledged.delete(connection);
    connection.stopExpiry = onCredentialExpiry(viewer, () => connection.close(CloseCode.Forbidden, 'Token expired'));
    connection.send(stringifyMessage({ type: MessageType.ConnectionAck }));
  }
}

/**
 * An operation of a connection from its `subscribe` until it runs: then it has answered (a query
 * or mutation) or a subscription has taken its place in the connection's operations.
 */
class WsCall implements OperationCall, Operation {
  private canceled = false;

  constructor(
    private readonly connection: Connection,
    private readonly id: string,
    readonly request: GraphQLRequest,
    private readonly pipelineFor: WsTransportOptions['pipeline'],
    /** The message's size (UTF-16 units), which the operation holds while it waits for a place. */
    readonly bytes: number,
  ) {}

  /** A `complete`, or the connection's end, while the operation is prepared. */
  stop(): void {
    this.canceled = true;
  }

  get withdrawn(): boolean {
    const { socket } = this.connection;
    return this.canceled || socket.readyState !== socket.OPEN;
  }

  pipeline(): OperationPipeline {
    const { connection } = this;
    return this.pipelineFor(this.request, connection.viewer as Viewer, connection.log.requestId, this);
  }

  refuse(errors: readonly GraphQLError[]): void {
    this.connection.operations.delete(this.id);
    this.connection.send(errorMessage(this.id, errors));
  }

  result(result: ExecutionResult): void {
    const { connection, id } = this;
    connection.operations.delete(id);
    connection.send(stringifyMessage({ id, type: MessageType.Next, payload: result }));
    connection.send(stringifyMessage({ id, type: MessageType.Complete }));
  }

  member(policy: MemberPolicy): QueuedMember {
    const subscription = new WsSubscription(this.connection, this.id, policy);
    this.connection.operations.set(this.id, subscription);
    return subscription;
  }
}

/** A subscription of one connection: its `next` frames carry its id. */
class WsSubscription extends QueuedMember {
  private readonly prefix: string;

  constructor(
    private readonly connection: Connection,
    private readonly id: string,
    policy: MemberPolicy,
  ) {
    super(connection, policy);
    this.prefix = `{"id":${JSON.stringify(id)},"type":"next","payload":`;
  }

  protected frame(delivery: Delivery): Buffer {
    return delivery.framed(this.prefix, '}');
  }

  protected finish(errors?: readonly GraphQLError[]): void {
    const { connection, id } = this;
    connection.operations.delete(id);
    connection.send(errors?.length ? errorMessage(id, errors) : stringifyMessage({ id, type: MessageType.Complete }));
  }
}

function errorMessage(id: string, errors: readonly GraphQLError[]): string {
  return stringifyMessage({ id, type: MessageType.Error, payload: errors.map((e) => e.toJSON()) });
}
