import { type AddressInfo, createServer, type Socket, connect as tcpConnect } from 'node:net';

/**
 * A TCP proxy between the server under test and a real service (PostgreSQL), so a test can
 * injure the network between them while the shared service itself keeps running.
 *
 * - `cut('hold')`: a blackhole. Open connections are destroyed and new ones are accepted but
 *   never answered, the worst case for a client: only its own timeouts get it out.
 * - `cut('refuse')`: open connections are destroyed and new ones closed at once.
 * - `restore()`: connections go through again (those held during the cut are dropped).
 */
export interface TcpProxy {
  /** The proxy's own port on 127.0.0.1. */
  port: number;
  cut(mode?: 'hold' | 'refuse'): void;
  restore(): void;
  close(): Promise<void>;
}

export async function startTcpProxy(target: { host: string; port: number }): Promise<TcpProxy> {
  let mode: 'open' | 'hold' | 'refuse' = 'open';
  /** Every socket on either side, so a cut can end them all. */
  const sockets = new Set<Socket>();
  const track = (socket: Socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    // A destroyed peer surfaces as an error on the other side; it is expected here.
    socket.on('error', () => socket.destroy());
  };
  const destroyAll = () => {
    for (const socket of sockets) socket.destroy();
  };

  const server = createServer((client) => {
    track(client);
    if (mode === 'refuse') return void client.destroy();
    if (mode === 'hold') return; // accepted, never answered
    const upstream = tcpConnect(target.port, target.host);
    track(upstream);
    client.pipe(upstream);
    upstream.pipe(client);
    client.on('close', () => upstream.destroy());
    upstream.on('close', () => client.destroy());
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));

  return {
    port: (server.address() as AddressInfo).port,
    cut(cutMode = 'hold') {
      mode = cutMode;
      destroyAll();
    },
    restore() {
      mode = 'open';
      destroyAll(); // the connections held during the cut were never forwarded
    },
    async close() {
      destroyAll();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
