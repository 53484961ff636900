import { createServer, type Server } from 'node:http';
import type { Socket } from 'node:net';

/** Where a started server listens. */
export interface RunningApp {
  url: string;
  port: number;
}

/** The node:http server, tracking its sockets so that `close()` really ends them. */
export interface HttpServer {
  server: Server;
  listen(port: number, host: string): Promise<RunningApp>;
  /** Stops accepting connections and destroys the open ones (keep-alive, streams). */
  close(): Promise<void>;
}

export function createHttpServer(): HttpServer {
  const server = createServer();
  const sockets = new Set<Socket>();
  server.on('connection', (socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });
  return {
    server,
    async listen(port, host) {
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen(port, host, () => resolve());
      });
      const address = server.address();
      const actualPort = typeof address === 'object' && address ? address.port : port;
      const shownHost = host.includes(':') ? `[${host}]` : host;
      return { port: actualPort, url: `http://${shownHost}:${actualPort}` };
    },
    async close() {
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      for (const socket of sockets) socket.destroy();
      await closed;
    },
  };
}
