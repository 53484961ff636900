import { type AddressInfo, createServer, type Socket, connect as tcpConnect } from 'node:net';

/**
 * A TCP proxy between the server under test and a real service (PostgreSQL), so a test can
 * injure the network between them while the shared service itself keeps running.
 *
 * - `cut('hold')`: a blackhole. Open connections are destroyed and new ones are accepted but
 *   never answered, the worst case for a client: only its own timeouts get it out.
 * - `cut('refuse')`: open connections are destroyed and new ones closed at once.
 * - `freeze()`: a service that stops answering, or a network that drops every packet: open
 *   connections stay open but nothing goes through either way, and new ones are held. No reset
 *   tells the client; only its own timeouts can.
 * - `restore()`: connections go through again (those held or frozen meanwhile are dropped);
 *   `restore({ dropHeld: false })` as a partition ends: the connections held meanwhile stay open
 *   and dead (what their clients sent was lost), frozen ones carry bytes again.
 * - `slow(ms)`: every answer of the service reaches the client `ms` later (a slow network), in
 *   order, and so does its closing of a connection (a reset, as its host would answer, when the
 *   client sent bytes after the close); `slow(0)` makes it prompt again.
 * - `holdAnswers()`: what the client sends still reaches the service (which runs it at once), but
 *   its answers are kept until `releaseAnswers()` delivers them, in order: the client stands still
 *   between a statement the service ran and its next one, for as long as the test needs.
 */
export interface TcpProxy {
  /** The proxy's own port on 127.0.0.1. */
  port: number;
  /** Connections the proxy accepted so far (refused ones included): a client trying again shows here. */
  readonly accepted: number;
  cut(mode?: 'hold' | 'refuse'): void;
  freeze(): void;
  restore(options?: { dropHeld?: boolean }): void;
  slow(ms: number): void;
  holdAnswers(): void;
  releaseAnswers(): void;
  close(): Promise<void>;
}

export async function startTcpProxy(target: { host: string; port: number }): Promise<TcpProxy> {
  let mode: 'open' | 'hold' | 'refuse' | 'frozen' = 'open';
  let delayMs = 0;
  /** Answers kept while held (holdAnswers), each with the client it is for. */
  let heldAnswers: { client: Socket; chunk: Buffer }[] | null = null;
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

  let accepted = 0;
  const server = createServer((client) => {
    accepted += 1;
    track(client);
    if (mode === 'refuse') return void client.destroy();
    if (mode === 'hold' || mode === 'frozen') return; // accepted, never answered
    const upstream = tcpConnect(target.port, target.host);
    track(upstream);
    /** Whether the client sent bytes after the service had closed: its kernel would answer them with a reset. */
    let lost = false;
    // Frozen: what either side sends is lost (restore() drops these connections anyway).
    client.on('data', (chunk: Buffer) => {
      if (mode !== 'open') return;
      if (upstream.destroyed) lost = true;
      else upstream.write(chunk);
    });
    // The answers, each held `delayMs` (and never before the one ahead of it).
    let due = 0;
    upstream.on('data', (chunk: Buffer) => {
      if (mode !== 'open') return;
      if (heldAnswers) return void heldAnswers.push({ client, chunk });
      due = Math.max(Date.now() + delayMs, due);
      const wait = due - Date.now();
      if (wait <= 0) client.write(chunk);
      else setTimeout(() => client.writable && client.write(chunk), wait);
    });
    client.on('close', () => upstream.destroy());
    // The service's close travels as its answers do: `delayMs` later, after them.
    upstream.on('close', () => {
      const end = () => client.destroyed || (lost ? client.resetAndDestroy() : client.destroy());
      const wait = Math.max(Date.now() + delayMs, due) - Date.now();
      if (wait <= 0) end();
      else setTimeout(end, wait);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));

  return {
    port: (server.address() as AddressInfo).port,
    get accepted() {
      return accepted;
    },
    cut(cutMode = 'hold') {
      mode = cutMode;
      destroyAll();
    },
    freeze() {
      mode = 'frozen';
    },
    restore({ dropHeld = true } = {}) {
      mode = 'open';
      if (dropHeld) destroyAll(); // the connections held during the cut were never forwarded
    },
    slow(ms) {
      delayMs = ms;
    },
    holdAnswers() {
      heldAnswers ??= [];
    },
    releaseAnswers() {
      const answers = heldAnswers ?? [];
      heldAnswers = null;
      for (const { client, chunk } of answers) if (client.writable) client.write(chunk);
    },
    async close() {
      destroyAll();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/**
 * A proxy in front of the PostgreSQL database of `databaseUrl` (a test database), and that URL
 * made to reach it through the proxy: what a server under test is given, so that the test can cut
 * the server off its database while reading it directly itself.
 */
export async function proxyDatabase(databaseUrl: string): Promise<{ proxy: TcpProxy; url: string }> {
  const url = new URL(databaseUrl);
  const proxy = await startTcpProxy({ host: url.hostname, port: Number(url.port || 5432) });
  url.hostname = '127.0.0.1';
  url.port = String(proxy.port);
  return { proxy, url: url.toString() };
}
