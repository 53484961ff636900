/**
 * Baseline of the fan-out benchmark (bench/fanout.ts): a raw `ws` WebSocketServer on a plain
 * node:http server, in its own process, speaking just enough of graphql-transport-ws for the same
 * load client (connection_init → connection_ack, subscribe, complete, ping → pong). On a `burst`
 * request it makes the same events at the same rate and, per event, serializes the same `next`
 * frame once and sends that string to every subscribed socket: the least work a WebSocket server
 * can do to deliver an event. Same IPC requests as fanout-server.ts.
 */
import { createServer } from 'node:http';
import { type WebSocket, WebSocketServer } from 'ws';
import { failed, fdLimit, send, serveFanoutServer } from './lib/fanout-child.js';
import { nextFrame } from './lib/fanout-protocol.js';

async function main(): Promise<void> {
  const server = createServer((_req, res) => {
    res.writeHead(404).end();
  });
  const wss = new WebSocketServer({ server, path: '/graphql' });
  const subscribed = new Set<WebSocket>();
  wss.on('connection', (socket) => {
    socket.on('message', (data) => {
      let message: { type?: string; id?: string };
      try {
        message = JSON.parse(String(data)) as typeof message;
      } catch {
        socket.close(4400, 'Invalid message received');
        return;
      }
      if (message.type === 'connection_init') socket.send('{"type":"connection_ack"}');
      else if (message.type === 'subscribe') subscribed.add(socket);
      else if (message.type === 'complete') subscribed.delete(socket);
      else if (message.type === 'ping') socket.send('{"type":"pong"}');
    });
    socket.on('close', () => subscribed.delete(socket));
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : 0;
  // Same magnitude as the StateStore's sequence (it starts at the process start time × 1000), so
  // the frame has the same length as the subject's.
  let sequence = Date.now() * 1000;
  serveFanoutServer(
    server,
    (index) => {
      sequence += 1;
      const frame = nextFrame(sequence, index);
      for (const socket of subscribed) socket.send(frame);
    },
    async () => {
      for (const socket of wss.clients) socket.terminate();
      await new Promise<void>((resolve) => wss.close(() => resolve()));
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  );
  send({ type: 'ready', url: `http://127.0.0.1:${port}`, fdLimit: fdLimit(), pid: process.pid });
}

main().catch(failed);
