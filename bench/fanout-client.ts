/**
 * Load client of the fan-out benchmark (bench/fanout.ts): N WebSocket connections from one process
 * (pinned to the other core), each speaking graphql-transport-ws directly with the `ws` package
 * (connection_init, then one `subscribe` with id "1"): no client library between the socket and
 * the count, so this process stays cheap. Every frame is parsed and checked; the receipt time of
 * each frame of the armed window is kept, and the parent is told once every client has every
 * event of the window.
 */
import http from 'node:http';
import WebSocket from 'ws';
import { cpuSample, failed, fdLimit, send, serve } from './lib/fanout-child.js';
import {
  BENCH_TASK_ID,
  type ClientRequest,
  type ConnectResult,
  epochMs,
  FANOUT_QUERY,
  SUBSCRIPTION_ID,
  type Transport,
  type WindowResult,
} from './lib/fanout-protocol.js';

const MAX_SAMPLES = 5;

interface Connection {
  /** Closes the connection; resolves once it is closed. */
  close(): Promise<void>;
  /** Index of the last event this connection received, for order and duplicate checks. */
  last: number;
  subscribed: boolean;
}

interface Frame {
  id?: string;
  type?: string;
  payload?: {
    data?: { runtimeEvents?: { kind?: string; task?: { taskId?: string; progress?: number } | null } };
    errors?: unknown[];
  };
}

const connections = new Set<Connection>();

/** The armed window. */
const window = {
  first: 0,
  count: 0,
  expected: 0,
  received: 0,
  other: 0,
  stale: 0,
  errors: 0,
  errorSamples: [] as string[],
  /** receipts[k * size + j]: epoch ms of the j-th receipt of event first + k. */
  receipts: new Float64Array(0),
  counts: new Int32Array(0),
  size: 0,
  cpuStart: 0,
  wallStart: 0,
  cpuEnd: -1,
  wallEnd: -1,
  active: false,
};

function error(detail: string): void {
  window.errors += 1;
  if (window.errorSamples.length < MAX_SAMPLES) window.errorSamples.push(detail.slice(0, 300));
}

function onFrame(connection: Connection, socket: WebSocket, data: WebSocket.RawData, at: number) {
  let frame: Frame;
  try {
    frame = JSON.parse(String(data)) as Frame;
  } catch {
    return error(`unparsable frame: ${String(data).slice(0, 200)}`);
  }
  if (frame.type === 'ping') {
    socket.send('{"type":"pong"}');
    return;
  }
  if (frame.type === 'pong') return;
  if (frame.type !== 'next' || frame.id !== SUBSCRIPTION_ID) return error(`unexpected frame: ${String(data)}`);
  onResult(connection, frame.payload, at);
}

/** One result of the subscription (a graphql-ws `next` payload, an SSE `next` event's data). */
function onResult(connection: Connection, payload: Frame['payload'], at: number) {
  if (payload?.errors?.length) return error(`errors: ${JSON.stringify(payload.errors)}`);
  const event = payload?.data?.runtimeEvents;
  const index = event?.task?.progress;
  if (event?.kind !== 'TASK_CHANGED' || event.task?.taskId !== BENCH_TASK_ID || typeof index !== 'number') {
    window.other += 1;
    return;
  }
  if (index <= connection.last) return error(`event ${index} after ${connection.last} on one connection`);
  connection.last = index;
  if (!window.active) return;
  const k = index - window.first;
  if (k < 0) {
    window.stale += 1;
    return;
  }
  if (k >= window.count) return error(`event ${index} beyond the window ${window.first}+${window.count}`);
  const j = window.counts[k] as number;
  if (j >= window.size) return error(`event ${index} received more than ${window.size} times`);
  window.receipts[k * window.size + j] = at;
  window.counts[k] = j + 1;
  window.received += 1;
  if (window.received === window.expected) {
    const cpu = cpuSample();
    window.cpuEnd = cpu.cpuMicros;
    window.wallEnd = cpu.wallMs;
    send({ type: 'complete' });
  }
}

/**
 * How a connection attempt ends, once: ok, or failed with a sample of why (then `abort`); failed
 * after 30 s with `timeoutDetail` when it has not ended by then.
 */
function settler(
  resolve: (ok: boolean) => void,
  errors: string[],
  abort: () => void,
  timeoutDetail: string,
): (ok: boolean, detail?: string) => void {
  let settled = false;
  const settle = (ok: boolean, detail?: string) => {
    if (settled) return;
    settled = true;
    clearTimeout(timer);
    if (!ok && detail && errors.length < MAX_SAMPLES) errors.push(detail);
    if (!ok) abort();
    resolve(ok);
  };
  const timer = setTimeout(() => settle(false, timeoutDetail), 30_000);
  return settle;
}

function open(url: string, errors: string[]): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = new WebSocket(url, 'graphql-transport-ws', { perMessageDeflate: false });
    const connection: Connection = {
      close: () =>
        new Promise<void>((done) => {
          if (socket.readyState === WebSocket.CLOSED) return done();
          const timer = setTimeout(() => {
            socket.terminate();
            done();
          }, 5000);
          socket.once('close', () => {
            clearTimeout(timer);
            done();
          });
          socket.close(1000, 'bench done');
        }),
      last: Number.NEGATIVE_INFINITY,
      subscribed: false,
    };
    const settle = settler(resolve, errors, () => socket.terminate(), 'no connection_ack within 30 s');
    socket.on('open', () => socket.send('{"type":"connection_init","payload":{}}'));
    socket.on('message', (data) => {
      if (connection.subscribed) return onFrame(connection, socket, data, epochMs());
      if (String(data) !== '{"type":"connection_ack"}' && !String(data).includes('"connection_ack"')) {
        return settle(false, `expected connection_ack, got ${String(data).slice(0, 200)}`);
      }
      socket.send(JSON.stringify({ id: SUBSCRIPTION_ID, type: 'subscribe', payload: { query: FANOUT_QUERY } }));
      connection.subscribed = true;
      connections.add(connection);
      settle(true);
    });
    socket.on('error', (err) => settle(false, `socket error: ${err.message}`));
    socket.on('close', (code, reason) => {
      if (connections.delete(connection) && window.active) error(`socket closed: ${code} ${String(reason)}`);
      settle(false, `closed before connection_ack: ${code} ${String(reason)}`);
    });
  });
}

/**
 * One SSE subscription: POST /graphql/stream (graphql-sse, distinct connections) with the same
 * operation; `event: next` blocks carry the results. Settles once the response headers arrive.
 */
function openSse(url: string, errors: string[]): Promise<boolean> {
  return new Promise((resolve) => {
    const body = JSON.stringify({ query: FANOUT_QUERY });
    const request = http.request(`${url}/graphql/stream`, {
      method: 'POST',
      agent: sseAgent,
      headers: {
        accept: 'text/event-stream',
        'content-type': 'application/json',
        'content-length': Buffer.byteLength(body),
      },
    });
    const connection: Connection = {
      close: () =>
        new Promise<void>((done) => {
          if (request.destroyed) return done();
          request.once('close', () => done());
          request.destroy();
        }),
      last: Number.NEGATIVE_INFINITY,
      subscribed: false,
    };
    const settle = settler(resolve, errors, () => request.destroy(), 'no response within 30 s');
    request.on('response', (response) => {
      if (response.statusCode !== 200) return settle(false, `status ${response.statusCode}`);
      response.setEncoding('utf8');
      let buffered = '';
      response.on('data', (chunk: string) => {
        const at = epochMs();
        buffered += chunk;
        for (let end = buffered.indexOf('\n\n'); end >= 0; end = buffered.indexOf('\n\n')) {
          const block = buffered.slice(0, end);
          buffered = buffered.slice(end + 2);
          if (block.startsWith(':')) continue; // keep-alive comment
          if (!block.startsWith(SSE_NEXT)) {
            error(`unexpected SSE block: ${block.slice(0, 200)}`);
            continue;
          }
          try {
            onResult(connection, JSON.parse(block.slice(SSE_NEXT.length)) as Frame['payload'], at);
          } catch {
            error(`unparsable SSE data: ${block.slice(0, 200)}`);
          }
        }
      });
      response.on('close', () => {
        if (connections.delete(connection) && window.active) error('SSE response ended');
      });
      connection.subscribed = true;
      connections.add(connection);
      settle(true);
    });
    request.on('error', (err) => settle(false, `request error: ${err.message}`));
    request.end(body);
  });
}

const SSE_NEXT = 'event: next\ndata: ';
/** No pooling: every subscription is its own connection, as graphql-sse's distinct-connections mode. */
const sseAgent = new http.Agent({ keepAlive: false, maxSockets: Number.POSITIVE_INFINITY });

async function connect(url: string, count: number, concurrency: number, transport: Transport): Promise<ConnectResult> {
  const started = performance.now();
  const wsUrl = `${url.replace(/^http/, 'ws')}/graphql`;
  const errorSamples: string[] = [];
  let next = 0;
  let subscribed = 0;
  let failedCount = 0;
  const worker = async () => {
    while (next < count) {
      next += 1;
      if (await (transport === 'sse' ? openSse(url, errorSamples) : open(wsUrl, errorSamples))) subscribed += 1;
      else failedCount += 1;
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, count) }, worker));
  return { subscribed, failed: failedCount, ms: performance.now() - started, errorSamples };
}

function arm(first: number, count: number): boolean {
  const size = connections.size;
  Object.assign(window, {
    first,
    count,
    size,
    expected: size * count,
    received: 0,
    other: 0,
    stale: 0,
    errors: 0,
    errorSamples: [],
    receipts: new Float64Array(size * count),
    counts: new Int32Array(count),
    cpuEnd: -1,
    wallEnd: -1,
    active: true,
  });
  const cpu = cpuSample();
  window.cpuStart = cpu.cpuMicros;
  window.wallStart = cpu.wallMs;
  return true;
}

function collect(published: number[]): WindowResult {
  window.active = false;
  if (window.cpuEnd < 0) {
    const cpu = cpuSample();
    window.cpuEnd = cpu.cpuMicros;
    window.wallEnd = cpu.wallMs;
  }
  const latenciesMs: number[] = [];
  const lastMs: number[] = [];
  const firstMs: number[] = [];
  for (let k = 0; k < window.count; k++) {
    const publishedAt = published[k] ?? Number.NaN;
    let first = Number.POSITIVE_INFINITY;
    let last = Number.NEGATIVE_INFINITY;
    const received = window.counts[k] as number;
    for (let j = 0; j < received; j++) {
      const latency = (window.receipts[k * window.size + j] as number) - publishedAt;
      latenciesMs.push(Math.round(latency * 1000) / 1000);
      if (latency < first) first = latency;
      if (latency > last) last = latency;
    }
    lastMs.push(received ? last : Number.NaN);
    firstMs.push(received ? first : Number.NaN);
  }
  return {
    expected: window.expected,
    received: window.received,
    other: window.other,
    stale: window.stale,
    errors: window.errors,
    errorSamples: window.errorSamples,
    latenciesMs,
    lastMs,
    firstMs,
    counts: Array.from(window.counts),
    cpuMicros: window.cpuEnd - window.cpuStart,
    wallMs: window.wallEnd - window.wallStart,
  };
}

async function closeAll(): Promise<number> {
  const closing = [...connections].map((connection) => connection.close());
  const count = closing.length;
  connections.clear();
  await Promise.all(closing);
  return count;
}

serve<ClientRequest>(
  async (request) => {
    switch (request.type) {
      case 'connect':
        return connect(request.url, request.count, request.concurrency, request.transport ?? 'ws');
      case 'arm':
        return arm(request.first, request.count);
      case 'collect':
        return collect(request.published);
      case 'close':
        return closeAll();
      case 'stop':
        return true;
    }
  },
  async () => {
    await closeAll();
  },
);

try {
  send({ type: 'ready', fdLimit: fdLimit(), pid: process.pid });
} catch (error) {
  failed(error);
}
