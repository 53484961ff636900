import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';

/**
 * A receiver of outbound deliveries (webhooks, payment pushes): a real HTTP server on port 0 that
 * records every request, in one of these modes:
 * - `ok`: answers 200;
 * - `fail`: answers `status` (500), with `headers`, to the next `times` requests, then 200;
 * - `hang`: holds every request open, answering nothing (until `release()` or the sender gives up);
 * - `redirect`: answers 302 to another path of its own;
 * - `drip`: answers 200 at once, then its body one byte every `everyMs` without ever ending it;
 * and `down()`: the port is closed (connections refused) until `up()` opens it again.
 * Like a receiver that deduplicates by Idempotency-Key, it counts how often it *processed* each
 * key: the first 2xx answer for a key processes it, later ones only answer.
 */

export interface ReceivedDelivery {
  path: string;
  headers: IncomingMessage['headers'];
  body: string;
  key: string;
  topic: string;
  attempt: number;
  signature: string;
  /** When it came in (Date.now()). */
  receivedAt: number;
  /** What it answered: a status, or 'held' (hang mode). */
  answered: number | 'held';
}

type Mode =
  | { kind: 'ok' }
  | { kind: 'fail'; times: number; status: number; headers: Record<string, string> }
  | { kind: 'hang' }
  | { kind: 'redirect' }
  | { kind: 'drip'; everyMs: number };

export class FakeReceiver {
  readonly requests: ReceivedDelivery[] = [];
  /** Idempotency-Key → times it was processed (at most 1 for a deduplicating receiver). */
  readonly processed = new Map<string, number>();
  /** Deliveries answered 2xx whose key was already processed. */
  duplicates = 0;
  private mode: Mode = { kind: 'ok' };
  private readonly held = new Set<ServerResponse>();
  private readonly sockets = new Set<Socket>();
  private readonly watchers = new Set<() => void>();
  private readonly drips = new Set<NodeJS.Timeout>();
  /** Called right after a 2xx answer was written (and the key processed): a fault to inject there. */
  onAnswered: ((delivery: ReceivedDelivery) => void) | null = null;
  private server: Server;
  private constructor(
    readonly port: number,
    server: Server,
  ) {
    this.server = server;
  }

  static async start(): Promise<FakeReceiver> {
    const receiver = new FakeReceiver(0, createServer());
    const port = await receiver.listen(0);
    (receiver as { port: number }).port = port;
    return receiver;
  }

  url(path = '/hook'): string {
    return `http://127.0.0.1:${this.port}${path}`;
  }

  ok(): void {
    this.mode = { kind: 'ok' };
  }
  fail(times: number, status = 500, headers: Record<string, string> = {}): void {
    this.mode = { kind: 'fail', times, status, headers };
  }
  hang(): void {
    this.mode = { kind: 'hang' };
  }
  redirect(): void {
    this.mode = { kind: 'redirect' };
  }
  drip(everyMs: number): void {
    this.mode = { kind: 'drip', everyMs };
  }

  /** Requests held open now (hang mode). */
  get holding(): number {
    return this.held.size;
  }

  /** Answers every held request with `status`. */
  release(status = 200): void {
    for (const response of this.held) response.writeHead(status).end();
    this.held.clear();
  }

  /** Deliveries received so far whose `match` holds. */
  received(match: (delivery: ReceivedDelivery) => boolean = () => true): ReceivedDelivery[] {
    return this.requests.filter(match);
  }

  /** Resolves with the first delivery (past or future) for which `match` holds. */
  waitFor(match: (delivery: ReceivedDelivery) => boolean, what: string, timeoutMs = 15_000): Promise<ReceivedDelivery> {
    return new Promise((resolve, reject) => {
      const check = () => {
        const found = this.requests.find(match);
        if (!found) return false;
        this.watchers.delete(watcher);
        clearTimeout(timer);
        resolve(found);
        return true;
      };
      const watcher = () => void check();
      const timer = setTimeout(() => {
        this.watchers.delete(watcher);
        reject(new Error(`timed out waiting for a delivery: ${what}`));
      }, timeoutMs);
      if (!check()) this.watchers.add(watcher);
    });
  }

  /** Closes the port and every connection: senders get ECONNREFUSED until `up()`. */
  async down(): Promise<void> {
    this.release(503);
    for (const drip of this.drips) clearInterval(drip);
    this.drips.clear();
    const closed = new Promise((resolve) => this.server.close(resolve));
    for (const socket of this.sockets) socket.destroy();
    await closed;
  }

  /** Listens again, on the same port. */
  async up(): Promise<void> {
    this.server = createServer();
    await this.listen(this.port);
  }

  async close(): Promise<void> {
    if (this.server.listening) await this.down();
  }

  private listen(port: number): Promise<number> {
    const { server } = this;
    server.keepAliveTimeout = 60_000;
    server.on('connection', (socket) => {
      this.sockets.add(socket);
      socket.once('close', () => this.sockets.delete(socket));
    });
    server.on('request', (request, response) => this.handle(request, response));
    return new Promise((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, '127.0.0.1', () => resolve((server.address() as AddressInfo).port));
    });
  }

  private handle(request: IncomingMessage, response: ServerResponse): void {
    const chunks: Buffer[] = [];
    request.on('data', (chunk: Buffer) => chunks.push(chunk));
    request.on('end', () => {
      const header = (name: string) => String(request.headers[name] ?? '');
      const delivery: ReceivedDelivery = {
        path: request.url ?? '',
        headers: request.headers,
        body: Buffer.concat(chunks).toString('utf8'),
        key: header('idempotency-key'),
        topic: header('x-event-topic'),
        attempt: Number(header('x-delivery-attempt')),
        signature: header('x-signature'),
        receivedAt: Date.now(),
        answered: 'held',
      };
      const { mode } = this;
      if (mode.kind === 'hang') {
        this.held.add(response);
        response.once('close', () => this.held.delete(response));
      } else if (mode.kind === 'drip') {
        delivery.answered = 200;
        response.writeHead(200, { 'content-type': 'application/json' });
        const drip = setInterval(() => response.write(' '), mode.everyMs);
        this.drips.add(drip);
        response.once('close', () => {
          clearInterval(drip);
          this.drips.delete(drip);
        });
      } else if (mode.kind === 'redirect') {
        delivery.answered = 302;
        response.writeHead(302, { location: this.url('/elsewhere') }).end();
      } else if (mode.kind === 'fail' && mode.times > 0) {
        mode.times--;
        delivery.answered = mode.status;
        const headers = { 'content-type': 'text/plain', ...mode.headers };
        response.writeHead(mode.status, headers).end('receiver is failing on purpose');
      } else {
        delivery.answered = 200;
        const seen = this.processed.get(delivery.key) ?? 0;
        if (seen > 0) this.duplicates++;
        else this.processed.set(delivery.key, 1);
        response.writeHead(200, { 'content-type': 'application/json' }).end('{"ok":true}');
      }
      this.requests.push(delivery);
      if (delivery.answered === 200) this.onAnswered?.(delivery);
      for (const watcher of [...this.watchers]) watcher();
    });
  }
}
