import { type AddressInfo, createServer, type Socket, connect as tcpConnect } from 'node:net';

/**
 * A TCP load balancer in front of server instances, as a deployment puts one (a Kubernetes
 * Service, nginx in docker-compose.yml): each new connection goes to the next backend in turn, and
 * to the one after it when that one refuses. A rolling restart takes an instance out of the
 * rotation before it is stopped (as endpoints drop a terminating pod) and adds its successor,
 * which listens on a new port, once it listens. Connections already made stay on their backend
 * until either side closes them, as with any TCP balancer.
 */
export interface LoadBalancer {
  /** `http://127.0.0.1:<port>`. */
  url: string;
  /** The backends new connections go to, from now on. */
  setBackends(backends: { host: string; port: number }[]): void;
  close(): Promise<void>;
}

export async function startLoadBalancer(initial: { host: string; port: number }[] = []): Promise<LoadBalancer> {
  let backends = [...initial];
  let next = 0;
  const sockets = new Set<Socket>();
  const track = (socket: Socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => socket.destroy());
  };

  /** Connects to the next backend that accepts; null when none does. */
  const connectSomewhere = async (): Promise<Socket | null> => {
    const candidates = backends.length;
    for (let tried = 0; tried < candidates; tried++) {
      const backend = backends[next++ % backends.length];
      if (!backend) break;
      const upstream = tcpConnect(backend.port, backend.host);
      const connected = await new Promise<boolean>((resolve) => {
        upstream.once('connect', () => resolve(true));
        upstream.once('error', () => resolve(false));
      });
      if (connected) return upstream;
      upstream.destroy();
    }
    return null;
  };

  const server = createServer((client) => {
    track(client);
    client.pause(); // nothing is read until there is somewhere to send it
    void connectSomewhere().then((upstream) => {
      if (!upstream || client.destroyed) {
        upstream?.destroy();
        client.destroy();
        return;
      }
      track(upstream);
      client.pipe(upstream);
      upstream.pipe(client);
      client.resume();
      client.on('close', () => upstream.destroy());
      upstream.on('close', () => client.destroy());
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));

  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    setBackends(list) {
      backends = [...list];
    },
    async close() {
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
