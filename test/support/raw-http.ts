import { connect } from 'node:net';

/**
 * Writes `text` on a raw socket: the answer, once complete or once the connection ends (at once
 * with `cutAfterWrite`; with `resetEnds`, a reset ends it too: a server that closes a connection
 * it did not read to the end resets it).
 */
export function rawExchange(
  port: number,
  text: string,
  { cutAfterWrite = false, resetEnds = false } = {},
): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1');
    let answer = '';
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => {
      answer += chunk;
      // One answer is enough: the status line, the headers and a body of the announced length.
      const [head = '', body = ''] = answer.split('\r\n\r\n');
      const length = Number(/content-length: (\d+)/i.exec(head)?.[1] ?? Number.NaN);
      if (body.length >= length) socket.end();
    });
    socket.on('error', (error) => (cutAfterWrite || resetEnds ? resolve(answer) : reject(error)));
    socket.on('close', () => resolve(answer));
    socket.write(text, () => {
      if (cutAfterWrite) socket.destroy();
    });
  });
}
