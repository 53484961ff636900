import { createServer, type Server } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { Writable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { HttpAppService } from '../src/adapters/app-service/http.js';
import type { OperationRequest, OperationType } from '../src/domain/operations.js';
import { createLogger } from '../src/platform/logger.js';
import { startTcpProxy, type TcpProxy } from './support/tcp-proxy.js';

/**
 * An app service that closes idle keep-alive connections after its own idle timeout without saying
 * so (no `Keep-Alive: timeout=` hint, as Go's net/http and nginx send none), reached over a network
 * that takes LATENCY_MS to carry its answers and its close to us: a request written within that
 * time of the close goes onto a connection the app service has already closed, as in production
 * when a task starts just as the app service's idle timeout ends.
 */
/** Node closes an idle connection about a second after its keepAliveTimeout: 1.3 s here. */
const IDLE_TIMEOUT_MS = 300;
const LATENCY_MS = 100;

interface Received {
  method: string;
  path: string;
  /** The app service's end of the connection the request came on. */
  socket: Socket;
}

let appService: Server;
let proxy: TcpProxy;
let connections = 0;
const received: Received[] = [];

beforeAll(async () => {
  appService = createServer({ keepAliveTimeout: IDLE_TIMEOUT_MS }, (request, response) => {
    received.push({ method: request.method ?? '', path: request.url ?? '', socket: request.socket });
    request.resume();
    request.on('end', () => {
      const body = request.method === 'GET' ? [] : { code: 200, message: 'success', data: { opID: 'op-1' } };
      // A Connection header of our own: Node then adds no Keep-Alive hint.
      response.writeHead(200, { 'content-type': 'application/json', connection: 'keep-alive' });
      response.end(JSON.stringify(body));
    });
  });
  appService.on('connection', () => {
    connections += 1;
  });
  await new Promise<void>((resolve) => appService.listen(0, '127.0.0.1', resolve));
  proxy = await startTcpProxy({ host: '127.0.0.1', port: (appService.address() as AddressInfo).port });
  proxy.slow(LATENCY_MS);
});
afterAll(async () => {
  await proxy?.close();
  appService?.closeAllConnections();
  await new Promise((resolve) => appService?.close(resolve));
});

function createService(): HttpAppService {
  const discard = new Writable({ write: (_chunk, _encoding, done) => done() });
  return new HttpAppService({
    baseUrl: `http://127.0.0.1:${proxy.port}`,
    timeoutMs: 5_000,
    repoUrl: 'http://chart-repo.local:82/',
    logger: createLogger('silent', discard),
  });
}

function operation(type: OperationType): OperationRequest {
  return {
    type,
    userId: 'alice',
    sourceId: 'market.olares',
    appName: 'jellyfin',
    version: '1.2.0',
    cfgType: 'app',
    envs: [],
  };
}

/** Resolves when the app service has closed the connection `socket` is its end of. */
function closedByAppService(socket: Socket): Promise<unknown> {
  return socket.destroyed ? Promise.resolve() : new Promise((resolve) => socket.once('close', resolve));
}

/** The socket of the last request the app service received. */
function lastSocket(): Socket {
  const last = received.at(-1);
  if (!last) throw new Error('the app service received nothing');
  return last.socket;
}

describe('an operation sent as the app service closes an idle connection', () => {
  test.each(['INSTALL', 'UPGRADE', 'UNINSTALL', 'STOP', 'RESUME'] as const)(
    '%s sent the moment the app service closed the idle connection is taken, once',
    async (type) => {
      const service = createService();
      await service.listApps();
      // The idle close has left the app service but not yet reached us: our pool still holds it.
      await closedByAppService(lastSocket());
      const before = received.length;

      await expect(service.start(operation(type))).resolves.toMatchObject({ response: { code: 200 } });
      expect(received.slice(before).map(({ method }) => method)).toEqual(['POST']);
    },
  );

  test('a cancel sent the moment the app service closed the idle connection is taken, once', async () => {
    const service = createService();
    await service.listApps();
    await closedByAppService(lastSocket());
    const before = received.length;

    await expect(
      service.cancel({
        userId: 'alice',
        sourceId: 'market.olares',
        appName: 'jellyfin',
        type: 'INSTALL',
        opId: 'op-1',
      }),
    ).resolves.toBe(undefined);
    expect(received.slice(before).map(({ path }) => path)).toEqual([
      '/app-service/v1/apps/jellyfin/cancel?type=operate',
    ]);
  });

  test('listings still share kept-alive connections', async () => {
    const service = createService();
    await service.listApps();
    await service.listApps();
    const opened = connections;
    for (let call = 0; call < 5; call += 1) await service.listApps();

    expect(connections).toBe(opened);
  });
});
