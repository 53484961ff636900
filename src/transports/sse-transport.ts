import { isUtf8 } from 'node:buffer';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { GraphQLError } from 'graphql';
import type { Viewer } from '../auth/viewer.js';
import { DomainError } from '../domain/errors.js';
import type { Delivery, SubscriptionCohorts } from '../fanout/cohorts.js';
import { type MemberPolicy, type Outlet, QueuedMember } from '../fanout/member.js';
import { BodyTooLarge, readBody } from '../http/body.js';
import { mediaTypeOf } from '../http/media-type.js';
import { requestIdFor } from '../http/request-notes.js';
import { NOT_UTF8_BODY } from '../http/text-encoding.js';
import type { Logger } from '../platform/logger.js';
import type { ConnectionBudget } from './connection-budget.js';
import { onCredentialExpiry } from './credential-expiry.js';
import { type GraphQLRequest, graphQLRequest, type OperationPipeline } from './graphql-operation.js';
import { keepAliveTimer } from './keep-alive.js';
import { ReadProgress, retryAfterSeconds } from './read-progress.js';
import { type SseTake, sseTake } from './sse-accept.js';
import { BadRequest, json, parseJson, refuseOperation, tooMany } from './sse-answers.js';
import {
  COMPLETE,
  END_OF_EVENT,
  KEEP_ALIVE,
  NEXT,
  oneEvent,
  SERVER_RESTART,
  startStream,
  TOKEN_EXPIRED,
} from './sse-frames.js';
import { type FlowMetrics, type OperationCall, SubscribeFlow } from './subscribe-flow.js';

/**
 * Server-sent events, one operation per request ("distinct connections"): the graphql-sse protocol
 * on `/graphql/stream` and Yoga's plain SSE on `/graphql` with `Accept: text/event-stream` (the
 * same wire format). Subscriptions join the same cohorts as WebSocket ones, through the same flow
 * (subscribe-flow.ts), and each event is written as bytes shared by every SSE member of the
 * cohort: `event: next` with the serialized result. Slow consumers follow QueuedMember's policy
 * (fanout/member.ts); a response counts as congested past `maxBufferedBytes` unwritten, and one
 * whose client stopped reading is closed (read-progress.ts). An operation refused before it runs
 * gets its errors as a stream's one event, as graphql-sse's protocol asks (refuseOperation).
 *
 * graphql-sse's single-connection mode (PUT reservations, event-stream tokens) is not served: its
 * reservations are state a client creates before any operation, and graphql-sse clients use
 * distinct connections unless told otherwise. Such requests get 405.
 */

export interface SseTransportOptions {
  /** The viewer of a request; rejects with a DomainError when its credentials are refused. */
  authenticate(req: IncomingMessage): Promise<Viewer>;
  /** The pipeline for one operation of a request, run as its viewer. */
  pipeline(request: GraphQLRequest, viewer: Viewer, req: IncomingMessage): OperationPipeline;
  cohorts: SubscriptionCohorts;
  /** Streams in all and per user (shared with WebSocket connections). */
  budget: ConnectionBudget;
  maxBufferedBytes: number;
  subscriberBuffer: number;
  /** Longest a stream goes without a write: idle ones get a comment line, which keeps them (and proxies) open. */
  keepAliveMs: number;
  maxBodyBytes: number;
  /** Turns a refused credential into the JSON error body and status to answer with. */
  errorBody(error: DomainError): { status: number; headers: Record<string, string>; body: unknown };
  /** Tells the request log who asked what (the pipeline's context does it when it runs). */
  identify(req: IncomingMessage, viewer: Viewer, operationName: string | null | undefined): void;
  logger: Logger;
  /** Subscriptions, refusals, member counts and stalled clients cut, for the metrics. @default not measured */
  metrics?: FlowMetrics;
}

/** One SSE response, from its start until its connection closes (also after its last event was written). */
class Stream implements Outlet {
  private draining = false;
  /** Something was written since the last keep-alive tick (twice a period, keep-alive.ts). */
  active = true;
  /** Whether its client still reads: a stalled one is closed at a keep-alive tick. */
  readonly progress: ReadProgress;

  constructor(
    readonly res: ServerResponse,
    private readonly maxBufferedBytes: number,
    /** Whose stream it is, for the line that says why it was closed. */
    readonly userId: string,
  ) {
    this.progress = new ReadProgress(res.socket as Socket);
  }

  write(frame: Buffer | string): void {
    this.active = true;
    if (!this.res.writableEnded) this.res.write(frame);
  }

  get congested(): boolean {
    return this.res.writableLength > this.maxBufferedBytes;
  }

  waitForDrain(member: QueuedMember): void {
    if (this.draining) return;
    this.draining = true;
    this.res.once('drain', () => {
      this.draining = false;
      member.flush();
    });
  }

  end(tail: string): void {
    if (!this.res.writableEnded) this.res.end(tail);
  }
}

export class SseTransport {
  private readonly streams = new Set<Stream>();
  private readonly keepAlive: NodeJS.Timeout;
  private readonly flow: SubscribeFlow;

  constructor(readonly options: SseTransportOptions) {
    this.flow = new SubscribeFlow(options);
    // One timer for every stream (keep-alive.ts); a stream written to since the last tick needs no
    // comment, nor does one with bytes waiting (a comment would pile up behind them).
    this.keepAlive = keepAliveTimer(options.keepAliveMs, (periodEnd) => {
      for (const stream of this.streams) {
        if (stream.res.destroyed) continue; // cut, its 'close' not yet run
        const state = periodEnd ? stream.progress.check() : stream.progress.peek();
        if (state === 'stalled') this.cut(stream);
        else if (stream.active || state === 'waiting') stream.active = false;
        else stream.write(KEEP_ALIVE);
      }
    });
  }

  /** What of `req` is for this transport (sse-accept.ts; OPTIONS preflights are Yoga's, for CORS). */
  accepts(req: IncomingMessage, path: string): SseTake {
    return sseTake(req, path);
  }

  /** Open SSE streams (also those whose last event waits for their client to read it). */
  get streamCount(): number {
    return this.streams.size;
  }

  /**
   * Closes the stream of a client that stopped reading (see ReadProgress). Judged only once more
   * than SUBSCRIPTION_MAX_BUFFERED_BYTES waited, one sent a few kB a minute kept its slot for
   * hours, and one whose last event waited unread for as long as TCP held the socket. The close
   * ends its subscription and gives its slot back. Nothing can tell the client (it reads nothing):
   * a graphql-sse client or an EventSource sees a lost connection and reconnects when it reads again.
   */
  private cut(stream: Stream): void {
    const { res } = stream;
    const reason = stream.progress.reason(this.options.keepAliveMs);
    this.options.logger.info(
      { requestId: requestIdFor(res.req), userId: stream.userId, reason },
      'sse stream closed: client stalled',
    );
    this.options.metrics?.clientCut('stalled');
    // It leaves `streams` on its 'close' (openStream), with its slot and subscription: counted
    // open until then, so a free stream count means a free slot.
    res.destroy();
  }

  /**
   * Ends every stream, without `complete`: to a graphql-sse client (and to an EventSource) a
   * stream that ends before its `complete` is a lost connection, which it retries, reaching
   * another instance or this one restarted. `complete` would tell it the subscription is over.
   * Returns how many streams it ended.
   */
  dispose(): number {
    clearInterval(this.keepAlive);
    let ended = 0;
    for (const stream of this.streams) {
      if (stream.res.writableEnded || stream.res.destroyed) continue;
      stream.end(SERVER_RESTART);
      ended += 1;
    }
    return ended;
  }

  /** `read`: the viewer and body of a POST the router authenticated and read (a subscription, sse-accept.ts). */
  async handle(req: IncomingMessage, res: ServerResponse, read?: { viewer: Viewer; body: Buffer }): Promise<void> {
    let request: GraphQLRequest;
    let viewer: Viewer | undefined;
    try {
      if (req.method !== 'GET' && req.method !== 'POST') {
        throw new BadRequest(405, "Use GET or POST (graphql-sse's single-connection mode is not served)", 'GET, POST');
      }
      // Before the body: nobody without credentials has one held (see routes.ts, authenticatedBeforeBody).
      viewer = read?.viewer ?? (await this.options.authenticate(req));
      request = await this.readRequest(req, read?.body);
    } catch (error) {
      if (error instanceof DomainError) {
        const { status, headers, body } = this.options.errorBody(error);
        return json(res, status, body, viewer === undefined, headers); // a refused sender's body stays unread
      }
      if (error instanceof BadRequest) return error.answer(res);
      if (error instanceof BodyTooLarge) {
        return json(res, 413, { errors: [{ message: error.message, extensions: { code: 'VALIDATION' } }] }, true);
      }
      throw error;
    }

    this.options.identify(req, viewer, request.operationName);
    return this.flow.run(request, viewer, this.call(req, res, request, viewer));
  }

  /** How the operation of one request is answered: a JSON error, one event, or a stream of them. */
  private call(req: IncomingMessage, res: ServerResponse, request: GraphQLRequest, viewer: Viewer): OperationCall {
    return {
      pipeline: () => this.options.pipeline(request, viewer, req),
      refuse: (errors) => refuseOperation(res, 400, {}, errors),
      accepts: (type) => {
        // A GET can be sent by any page (a link, an image): it must never change anything.
        if (type !== 'mutation' || req.method === 'POST') return true;
        new BadRequest(405, 'Mutations are only accepted in a POST request', 'POST').answer(res);
        return false;
      },
      // A request cannot take its operation back; one still waiting for a place of its user's when
      // its socket closed never runs (operations-in-flight.ts reads the request, as over plain HTTP).
      withdrawn: false,
      result: (result) => oneEvent(res, result),
      refusedBeforeRunning: (status, headers, errors) => refuseOperation(res, status, headers, errors),
      member: (policy) => this.openStream(req, res, viewer, policy),
    };
  }

  /** The stream of a subscription, or null when the response had to refuse it. */
  private openStream(
    req: IncomingMessage,
    res: ServerResponse,
    viewer: Viewer,
    policy: MemberPolicy,
  ): SseSubscription | null {
    // The client may have gone while the operation was prepared: its 'close' has fired already,
    // so nothing taken here would be given back.
    if (!res.socket || res.socket.destroyed) return null;
    const { budget } = this.options;
    const retryAfter = retryAfterSeconds(this.options.keepAliveMs);
    if (!budget.tryOpen()) {
      tooMany(res, 'Too many streams on this instance (MAX_CONNECTIONS)', retryAfter);
      return null;
    }
    if (!budget.tryClaim(viewer.userId)) {
      budget.close();
      tooMany(
        res,
        'Too many connections and streams for this user on this instance (MAX_CONNECTIONS_PER_USER)',
        retryAfter,
      );
      return null;
    }
    const stream = new Stream(res, this.options.maxBufferedBytes, viewer.userId);
    startStream(res);
    // Some clients only report the stream open once a first byte arrives.
    stream.write(KEEP_ALIVE);
    // Until the connection closes, not until the last event: a stream whose end waits behind
    // bytes its client does not read holds its slot until then, so it is watched until then.
    this.streams.add(stream);
    const path = new URL(req.url ?? '/', 'http://localhost').pathname;
    const member = new SseSubscription(stream, policy, sseTake(req, path) === 'all');
    const stopExpiry = onCredentialExpiry(viewer, () => member.expire());
    res.once('close', () => {
      stopExpiry();
      budget.close();
      budget.release(viewer.userId);
      this.streams.delete(stream);
      member.stop();
    });
    return member;
  }

  /** The operation from the query string (GET) or the JSON body (POST). */
  private async readRequest(req: IncomingMessage, read: Buffer | undefined): Promise<GraphQLRequest> {
    let params: Record<string, unknown>;
    if (req.method === 'GET') {
      const search = new URL(req.url ?? '/', 'http://localhost').searchParams;
      params = Object.fromEntries(search);
      if (typeof params.variables === 'string') params.variables = parseJson(params.variables, 'variables');
    } else {
      if (mediaTypeOf(req.headers['content-type']) !== 'application/json') {
        throw new BadRequest(415, 'POST bodies must be application/json');
      }
      const bytes = read ?? (await readBody(req, this.options.maxBodyBytes));
      if (!isUtf8(bytes)) throw new BadRequest(400, NOT_UTF8_BODY);
      const body = parseJson(bytes.toString('utf8'), 'body');
      if (typeof body !== 'object' || body === null || Array.isArray(body)) {
        throw new BadRequest(400, 'The body must be a JSON object');
      }
      params = body as Record<string, unknown>;
    }
    const { operationName, variables } = params;
    const request = graphQLRequest(params);
    if (!request.query) throw new BadRequest(400, 'Missing query');
    if (operationName != null && typeof operationName !== 'string') {
      throw new BadRequest(400, 'operationName must be a string');
    }
    if (variables != null && (typeof variables !== 'object' || Array.isArray(variables))) {
      throw new BadRequest(400, 'variables must be an object');
    }
    return request;
  }
}

/** The subscription of one SSE response. */
class SseSubscription extends QueuedMember {
  constructor(
    private readonly stream: Stream,
    policy: MemberPolicy,
    /** Whether its client chose the event stream (graphql-sse's client, EventSource): see expire(). */
    private readonly reconnects: boolean,
  ) {
    super(stream, policy);
  }

  protected frame(delivery: Delivery): Buffer {
    return delivery.framed(NEXT, END_OF_EVENT);
  }

  protected finish(errors?: readonly GraphQLError[]): void {
    const error = errors?.length ? `${NEXT}${JSON.stringify({ errors })}${END_OF_EVENT}` : '';
    this.stream.end(`${error}${COMPLETE}`);
  }

  /**
   * The viewer's credential expired. To a client that chose the event stream (graphql-sse's,
   * EventSource) the stream ends without `complete`, saying why in a comment: graphql-sse's client
   * takes that for a lost connection and reconnects, asking its `headers` for a fresh token, as
   * graphql-ws's close 4403 has a client reconnect; `complete` (after an UNAUTHENTICATED `next`)
   * told it the subscription was over, and a live dashboard stopped for good. A client whose token
   * is really gone learns why from the reconnect's 401. A client that prefers JSON and streams
   * only its subscriptions (urql's `fetchSubscriptions`) reads the end of the body as the end of
   * the subscription, reconnecting or not: it gets the UNAUTHENTICATED `next` and `complete`, so
   * that it learns why and can subscribe again.
   */
  expire(): void {
    this.stop();
    if (this.reconnects) this.stream.end(TOKEN_EXPIRED);
    else this.finish([new GraphQLError('Token expired', { extensions: { code: 'UNAUTHENTICATED' } })]);
  }
}
