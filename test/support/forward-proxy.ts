import { createServer, request as httpRequest, type Server } from 'node:http';
import { type AddressInfo, connect, type Socket } from 'node:net';

/**
 * A forward HTTP proxy on a real port, as a network whose only way out is a proxy has one:
 * absolute-form requests (`GET http://host:port/path`) for http:// targets and CONNECT tunnels
 * for https:// ones. The hosts it knows (`hosts`: name → address) are names only it resolves, so
 * a call that reaches such a host went through it; others are resolved as the machine does.
 * `seen` records every request and tunnel, as `METHOD host:port`.
 */
export interface ForwardProxy {
  url: string;
  readonly seen: readonly string[];
  close(): Promise<void>;
}

export async function startForwardProxy(hosts: Record<string, string>): Promise<ForwardProxy> {
  const seen: string[] = [];
  const sockets = new Set<Socket>();
  const address = (host: string) => hosts[host.toLowerCase()] ?? host;
  const server: Server = createServer((req, res) => {
    const target = URL.parse(req.url ?? '');
    if (target?.protocol !== 'http:') {
      res.writeHead(400).end('absolute-form http:// request expected');
      return;
    }
    const port = Number(target.port || 80);
    seen.push(`${req.method} ${target.hostname}:${port}`);
    const upstream = httpRequest(
      {
        host: address(target.hostname),
        port,
        method: req.method,
        path: `${target.pathname}${target.search}`,
        headers: req.headers,
      },
      (answer) => {
        res.writeHead(answer.statusCode ?? 502, answer.headers);
        answer.pipe(res);
      },
    );
    upstream.on('error', () => (res.headersSent ? res.destroy() : res.writeHead(502).end('bad gateway')));
    req.pipe(upstream);
  });
  server.on('connect', (req, client: Socket, head: Buffer) => {
    const [host = '', port = '443'] = (req.url ?? '').split(/:(?=\d+$)/);
    seen.push(`CONNECT ${host}:${port}`);
    const upstream = connect(Number(port), address(host), () => {
      client.write('HTTP/1.1 200 Connection Established\r\n\r\n');
      upstream.write(head);
      upstream.pipe(client).pipe(upstream);
    });
    upstream.on('error', () => client.end('HTTP/1.1 502 Bad Gateway\r\n\r\n'));
    client.on('error', () => upstream.destroy());
  });
  server.on('connection', (socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    seen,
    close: () =>
      new Promise((resolve) => {
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      }),
  };
}
