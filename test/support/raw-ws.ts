import WebSocket from 'ws';

/**
 * A bare graphql-transport-ws socket for probing the protocol edge as an attacker would: any
 * upgrade headers, any frames, and the exact close code and messages the server answers with.
 */
export interface RawSocket {
  socket: WebSocket;
  /** Messages received so far, parsed. */
  messages: { type: string; id?: string; payload?: unknown }[];
  send(message: unknown): void;
  /** The next message of `type` (or fails with the close code if the socket closes first). */
  nextOfType(type: string, timeoutMs?: number): Promise<{ type: string; id?: string; payload?: unknown }>;
  /** Resolves with the close code and reason once the server closes the socket. */
  closed: Promise<{ code: number; reason: string }>;
}

/** Opens a socket; rejects with the HTTP status when the upgrade is refused. */
export function openRawSocket(
  url: string,
  options: { headers?: Record<string, string>; protocol?: string } = {},
): Promise<RawSocket> {
  const socket = new WebSocket(`${url.replace(/^http/, 'ws')}/graphql`, options.protocol ?? 'graphql-transport-ws', {
    headers: options.headers,
  });
  const messages: RawSocket['messages'] = [];
  const listeners = new Set<() => void>();
  socket.on('message', (data) => {
    messages.push(JSON.parse(String(data)));
    for (const listener of listeners) listener();
  });
  const closed = new Promise<{ code: number; reason: string }>((resolve) => {
    socket.on('close', (code, reason) => {
      resolve({ code, reason: String(reason) });
      for (const listener of listeners) listener();
    });
  });
  return new Promise((resolve, reject) => {
    socket.once('unexpected-response', (_request, response) =>
      reject(new Error(`upgrade refused: ${response.statusCode}`)),
    );
    socket.once('error', reject);
    socket.once('open', () =>
      resolve({
        socket,
        messages,
        closed,
        send: (message) => socket.send(JSON.stringify(message)),
        nextOfType(type, timeoutMs = 10_000) {
          return new Promise((found, fail) => {
            const timer = setTimeout(() => fail(new Error(`no ${type} message within ${timeoutMs} ms`)), timeoutMs);
            const check = () => {
              const index = messages.findIndex((m) => m.type === type);
              if (index >= 0) {
                listeners.delete(check);
                clearTimeout(timer);
                found(messages.splice(index, 1)[0] as RawSocket['messages'][number]);
              } else if (socket.readyState === WebSocket.CLOSED) {
                listeners.delete(check);
                clearTimeout(timer);
                closed.then(({ code }) => fail(new Error(`socket closed ${code} before a ${type} message`)));
              }
            };
            listeners.add(check);
            check();
          });
        },
      }),
    );
  });
}
