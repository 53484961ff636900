import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { connect, type Socket } from 'node:net';

/**
 * A port on 127.0.0.1 that never lets a connection in: what a client sees of a host that drops
 * its SYNs (a firewall, an overloaded or frozen service). A process listens with a backlog of 1
 * and then blocks, so it never accepts; the two connections Linux queues for such a listener
 * (backlog + 1) are made here, and the kernel drops every SYN after them unanswered. A client's
 * connect then hangs until its own timeout, as against a blackhole address, without needing one.
 */
export interface UnacceptingPort {
  port: number;
  close(): Promise<void>;
}

/** Listens, prints its port, then blocks its only thread for good: nothing is ever accepted. */
const LISTENER = `
const server = require('node:net').createServer();
server.listen({ port: 0, host: '127.0.0.1', backlog: 1 }, () => {
  process.stdout.write(server.address().port + '\\n');
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0);
});`;

export async function startUnacceptingPort(): Promise<UnacceptingPort> {
  const child = spawn(process.execPath, ['-e', LISTENER], { stdio: ['ignore', 'pipe', 'inherit'] });
  const exited = once(child, 'exit');
  const [line] = (await once(child.stdout, 'data')) as [Buffer];
  const port = Number(line.toString().trim());
  const queued: Socket[] = [];
  for (let i = 0; i < 2; i++) {
    const socket = connect(port, '127.0.0.1');
    socket.on('error', () => socket.destroy());
    queued.push(socket);
    await once(socket, 'connect');
  }
  return {
    port,
    async close() {
      for (const socket of queued) socket.destroy();
      child.kill('SIGKILL');
      await exited;
    },
  };
}
