import { createServer, request as httpRequest, type IncomingHttpHeaders, type Server } from 'node:http';
import { connect, type Socket } from 'node:net';

/**
 * A minimal authenticating gateway in front of a server, as the Olares one sits in front of the
 * Market: it strips the user header from whatever the client sent and sets its own, on plain
 * requests and on WebSocket upgrades alike.
 */
export interface Gateway {
  url: string;
  /** Another user signs in at the gateway: the next requests and connections are theirs. */
  signIn(userId: string): void;
  /**
   * The user signs out at the gateway: it refuses WebSocket upgrades itself (401, as one sending
   * its sign-in page does) and passes plain requests on without the user header.
   */
  signOut(): void;
  /** Cuts every connection through it (a gateway restart): clients connect again. */
  cut(): void;
  close(): Promise<void>;
}

/**
 * `pathPrefix` (e.g. `/market`): the gateway serves the server under it, as one serving several
 * services on one host does: `/market/x` goes to the server as `/x`, anything else is a 404.
 */
export async function startGateway(
  target: string,
  header: string,
  userId: string,
  { pathPrefix = '' }: { pathPrefix?: string } = {},
): Promise<Gateway> {
  const upstream = new URL(target);
  let user: string | null = userId;
  /** The server's path for a request's, or null outside the prefix. */
  const upstreamPath = (url = '/') =>
    !pathPrefix ? url : url.startsWith(`${pathPrefix}/`) ? url.slice(pathPrefix.length) : null;
  const rewrite = (headers: IncomingHttpHeaders): IncomingHttpHeaders => {
    const out: IncomingHttpHeaders = { ...headers, host: upstream.host };
    delete out[header.toLowerCase()];
    if (user !== null) out[header.toLowerCase()] = user;
    // The browser's page is the gateway's origin; the server sees it as its own.
    if (out.origin) out.origin = upstream.origin;
    return out;
  };
  const server: Server = createServer((req, res) => {
    const path = upstreamPath(req.url);
    if (path === null) {
      res.writeHead(404).end();
      return;
    }
    const forwarded = httpRequest(
      {
        host: upstream.hostname,
        port: upstream.port,
        method: req.method,
        path,
        headers: rewrite(req.headers),
      },
      (response) => {
        res.writeHead(response.statusCode ?? 502, response.headers);
        response.pipe(res);
      },
    );
    forwarded.on('error', () => res.destroy());
    req.pipe(forwarded);
  });
  server.on('upgrade', (req, socket, head) => {
    const path = upstreamPath(req.url);
    if (path === null || user === null) {
      socket.end(`HTTP/1.1 ${path === null ? '404 Not Found' : '401 Unauthorized'}\r\n\r\n`);
      return;
    }
    const upstreamSocket = connect(Number(upstream.port), upstream.hostname, () => {
      const headers = rewrite(req.headers);
      const lines = Object.entries(headers).flatMap(([name, value]) =>
        (Array.isArray(value) ? value : [value]).map((v) => `${name}: ${v}`),
      );
      upstreamSocket.write(`${req.method} ${path} HTTP/1.1\r\n${lines.join('\r\n')}\r\n\r\n`);
      upstreamSocket.write(head);
      upstreamSocket.pipe(socket).pipe(upstreamSocket);
    });
    upstreamSocket.on('error', () => socket.destroy());
    socket.on('error', () => upstreamSocket.destroy());
  });
  // Upgraded sockets are no longer the HTTP server's: closing means destroying them too.
  const sockets = new Set<Socket>();
  server.on('connection', (socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : 0;
  return {
    url: `http://127.0.0.1:${port}`,
    signIn: (next) => {
      user = next;
    },
    signOut: () => {
      user = null;
    },
    cut: () => {
      for (const socket of sockets) socket.destroy();
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        for (const socket of sockets) socket.destroy();
      }),
  };
}
