/**
 * The receiver of the `outbox` benchmark (bench/outbox.ts), in a process of its own so that its
 * CPU is not the sender's: a keep-alive HTTP server on port 0 that reads each POST and answers 200.
 * Answers `count` (requests received so far).
 */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { failed, send, serve } from './lib/fanout-child.js';

export type OutboxReceiverRequest = { id: number; type: 'count' } | { id: number; type: 'stop' };

async function main(): Promise<void> {
  let count = 0;
  const server = createServer((request, response) => {
    request.resume();
    request.on('end', () => {
      count++;
      response.writeHead(200, { 'content-type': 'application/json', 'content-length': '2' }).end('{}');
    });
  });
  server.keepAliveTimeout = 60_000;
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  serve<OutboxReceiverRequest>(
    async (request) => {
      if (request.type === 'count') return count;
      throw new Error(`unknown request ${request.type}`);
    },
    async () => {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    },
  );
  send({ type: 'ready', url: `http://127.0.0.1:${port}/hook`, fdLimit: null, pid: process.pid });
}

main().catch(failed);
