import { createServer, type IncomingHttpHeaders, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

/**
 * A stand-in for the app service on a real port, so HttpAppService and the
 * task engine are tested over real HTTP. It records every request and answers each kind of call
 * the way a test asks it to; app states reach the engine through `sendEvent`, like the real one.
 */

export type CallKind = 'install' | 'clone' | 'upgrade' | 'uninstall' | 'cancel' | 'suspend' | 'resume' | 'listApps';

export type Behaviour =
  /** HTTP 200 `{code: 200}` with `data.opID` (`op-<n>` unless given; null leaves it out). */
  | { respond: 'accept'; opId?: string | null }
  /**
   * As `accept`, but only once `released` settles: the app service holds the request open until
   * then (a list is then answered with `apps` as they are at that moment).
   */
  | { respond: 'accept-when'; released: Promise<unknown>; opId?: string | null }
  /** HTTP 200 with another code: the app service saying no, e.g. 422 missing env values. */
  | { respond: 'business-error'; code: number; message: string; data?: unknown }
  /**
   * Any HTTP status, with a JSON body and headers (e.g. `Retry-After`) when given; only once
   * `released` settles when given (an operation it started, and reported, before failing the call).
   */
  | {
      respond: 'http-error';
      status: number;
      body?: unknown;
      headers?: Record<string, string>;
      released?: Promise<unknown>;
    }
  /** HTTP 200 with this JSON as it is, e.g. something that is not the envelope. */
  | { respond: 'json'; body: unknown }
  /** HTTP 200 with a body that is not JSON. */
  | { respond: 'garbage' }
  /** Never answers (until `stop`). */
  | { respond: 'hang' }
  /**
   * Quotes the request back, as real app services do in their errors: HTTP `status` (200 unless
   * given) with `{code, message: prefix + the raw request body, data: {request: the parsed body}}`,
   * secrets and all.
   */
  | { respond: 'quote-request'; code: number; prefix: string; status?: number };

export interface RecordedRequest {
  method: string;
  path: string;
  query: Record<string, string>;
  headers: IncomingHttpHeaders;
  /** Parsed JSON, the raw text when it is not JSON, or undefined when there was no body. */
  body: unknown;
  /** When it arrived (Date.now()). */
  receivedAt: number;
}

/** The fields of an app-state event as the app service sends them. */
export interface AppStateEventBody {
  eventID?: string;
  createTime: string;
  name: string;
  rawAppName?: string;
  title?: string;
  opID?: string;
  opType?: string;
  state: string;
  user: string;
  progress?: string;
  marketSource?: string;
  reason?: string;
  message?: string;
  entranceStatuses?: unknown[];
  sharedEntrances?: unknown[];
}

export interface FakeAppService {
  url: string;
  requests: RecordedRequest[];
  /** What `/all/apps` lists, as app-service status objects; tests may change it at any time. */
  apps: unknown[];
  /**
   * What `/middlewares/status` lists (`{user, resourceStatus, updateTime, metadata: {name}, …}`);
   * null: it answers HTTP 500 (middlewares cannot be listed now).
   */
  middlewares: unknown[] | null;
  /** How it answers calls of `kind`: all of them, or only the next `times` (then it accepts them again). */
  setBehaviour(kind: CallKind, behaviour: Behaviour, times?: number): void;
  /** Back to accepting everything, with no recorded requests. */
  reset(): void;
  sendEvent(intakeUrl: string, secret: string, event: AppStateEventBody): Promise<number>;
  stop(): Promise<void>;
}

export interface FakeAppServiceOptions {
  apps?: unknown[];
  /**
   * Called when an operation is accepted (before the answer goes out), with the op id it answers:
   * lets a fake app service that plays operations out (fake-app-service-process.ts) list the app
   * and report its states.
   */
  onAccepted?: (kind: Exclude<CallKind, 'listApps'>, request: RecordedRequest, opId: string | null) => void;
}

export async function startFakeAppService(options: FakeAppServiceOptions = {}): Promise<FakeAppService> {
  const requests: RecordedRequest[] = [];
  const behaviours = new Map<CallKind, { behaviour: Behaviour; times: number }>();
  let opCount = 0;

  const server = createServer(async (req, res) => {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const text = Buffer.concat(chunks).toString('utf8');
    const url = new URL(req.url ?? '/', 'http://fake');
    const request: RecordedRequest = {
      method: req.method ?? '',
      path: url.pathname,
      query: Object.fromEntries(url.searchParams),
      headers: req.headers,
      body: text === '' ? undefined : parseJson(text),
      receivedAt: Date.now(),
    };
    requests.push(request);
    if (request.method === 'GET' && request.path === '/app-service/v1/middlewares/status') {
      const { middlewares } = fake;
      if (middlewares === null) return reply(res, 500, { code: 500, message: 'middleware status unavailable' });
      return reply(res, 200, { code: 200, message: 'success', data: middlewares });
    }

    const kind = callKindOf(request);
    if (!kind) return reply(res, 404, { code: 404, message: `no route ${request.method} ${request.path}`, data: null });
    const set = behaviours.get(kind);
    if (set && --set.times === 0) behaviours.delete(kind);
    const behaviour = set?.behaviour ?? { respond: 'accept' };
    switch (behaviour.respond) {
      case 'accept-when':
      case 'accept': {
        if (behaviour.respond === 'accept-when') await behaviour.released;
        if (kind === 'listApps') return reply(res, 200, { code: 200, message: 'success', data: fake.apps });
        opCount += 1;
        const opId = behaviour.opId === null ? null : (behaviour.opId ?? `op-${opCount}`);
        options.onAccepted?.(kind, request, opId);
        return reply(res, 200, { code: 200, message: 'success', data: opId === null ? {} : { opID: opId } });
      }
      case 'business-error':
        return reply(res, 200, { code: behaviour.code, message: behaviour.message, data: behaviour.data ?? null });
      case 'http-error':
        await behaviour.released;
        return reply(res, behaviour.status, behaviour.body, behaviour.headers);
      case 'json':
        return reply(res, 200, behaviour.body);
      case 'garbage':
        res.writeHead(200, { 'content-type': 'text/html' }).end('<html>502 Bad Gateway</html>');
        return;
      case 'hang':
        return;
      case 'quote-request':
        return reply(res, behaviour.status ?? 200, {
          code: behaviour.code,
          message: `${behaviour.prefix}${text}`,
          data: { request: request.body ?? null },
        });
    }
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;

  const fake: FakeAppService = {
    url: `http://127.0.0.1:${port}`,
    requests,
    apps: options.apps ?? [],
    middlewares: [],
    setBehaviour(kind, behaviour, times = Number.POSITIVE_INFINITY) {
      behaviours.set(kind, { behaviour, times });
    },
    reset() {
      behaviours.clear();
      requests.length = 0;
    },
    sendEvent,
    async stop() {
      // Hanging requests keep their sockets open; close() alone would wait for them forever.
      server.closeAllConnections();
      await new Promise<void>((resolve, reject) => server.close((error) => (error ? reject(error) : resolve())));
    },
  };
  return fake;
}

/** POSTs one state event to an event intake the way the app service would; resolves with the HTTP status. */
export async function sendEvent(intakeUrl: string, secret: string, event: AppStateEventBody): Promise<number> {
  const response = await fetch(intakeUrl, {
    method: 'POST',
    headers: { authorization: `Bearer ${secret}`, 'content-type': 'application/json' },
    body: JSON.stringify(event),
  });
  await response.arrayBuffer();
  return response.status;
}

function callKindOf({ method, path, body }: RecordedRequest): CallKind | null {
  if (method === 'GET' && path === '/app-service/v1/all/apps') return 'listApps';
  const match = /^\/app-service\/v1\/apps\/[^/]+\/(install|upgrade|uninstall|cancel|suspend|resume)$/.exec(path);
  if (method !== 'POST' || !match) return null;
  const action = match[1] as Exclude<CallKind, 'clone' | 'listApps'>;
  // A clone is an install of a new name; only its body tells them apart.
  const isClone = action === 'install' && typeof body === 'object' && body !== null && 'rawAppName' in body;
  return isClone ? 'clone' : action;
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

function reply(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  if (body === undefined) {
    res.writeHead(status, headers).end();
    return;
  }
  res.writeHead(status, { ...headers, 'content-type': 'application/json' }).end(JSON.stringify(body));
}
