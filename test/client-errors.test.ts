import { once } from 'node:events';
import { connect, type Socket } from 'node:net';
import { describe, expect, test } from 'vitest';
import { rawExchange } from './support/raw-http.js';
import { serversOfThisFile, type TestServer, waitFor } from './support/server.js';

/**
 * Requests node:http refuses before the app sees them ('clientError': a request line or a header it
 * cannot parse, headers past its limit), sent over raw sockets: each answered as Node answers it,
 * counted on /metrics by reason, and logged, a bounded number of lines a minute.
 */

const serverWith = serversOfThisFile();
const LINE = 'request refused before it reached the app';

const portOf = (server: TestServer) => Number(new URL(server.url).port);
const refusedLines = (server: TestServer) =>
  server.logs.map((line) => JSON.parse(line) as Record<string, unknown>).filter((line) => line.msg === LINE);

/** market_http_client_errors_total by reason, from /metrics over HTTP. */
async function counted(server: TestServer): Promise<Map<string, number>> {
  const text = await (await fetch(`${server.url}/metrics`)).text();
  const byReason = new Map<string, number>();
  for (const [, reason, value] of text.matchAll(/^market_http_client_errors_total\{reason="([^"]*)"\} (\S+)$/gm)) {
    byReason.set(reason as string, Number(value));
  }
  return byReason;
}

describe('requests node:http cannot read', () => {
  test('a bad request line, an invalid header and headers past the limit: 400, 400 and 431 as Node answers, each counted and logged by reason', async () => {
    const server = await serverWith();
    const port = portOf(server);
    // A control character in the method: not an HTTP token.
    const badLine = await rawExchange(port, 'G\u0001T /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n', {
      resetEnds: true,
    });
    expect(badLine).toBe('HTTP/1.1 400 Bad Request\r\nConnection: close\r\n\r\n');
    const badHeader = await rawExchange(port, 'GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nBad Header: x\r\n\r\n', {
      resetEnds: true,
    });
    expect(badHeader).toBe('HTTP/1.1 400 Bad Request\r\nConnection: close\r\n\r\n');
    // Node's limit is 16 KiB of headers.
    const huge = `GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nx-pad: ${'a'.repeat(20_000)}\r\n\r\n`;
    const overflow = await rawExchange(port, huge, { resetEnds: true });
    expect(overflow).toBe('HTTP/1.1 431 Request Header Fields Too Large\r\nConnection: close\r\n\r\n');

    const byReason = await counted(server);
    expect(byReason.get('HPE_INVALID_METHOD')).toBe(1);
    expect(byReason.get('HPE_INVALID_HEADER_TOKEN')).toBe(1);
    expect(byReason.get('HPE_HEADER_OVERFLOW')).toBe(1);
    const lines = await waitFor(async () => {
      const found = refusedLines(server);
      return found.length === 3 ? found : undefined;
    }, 'three log lines');
    expect(lines.map(({ level, reason, status }) => [level, reason, status])).toEqual([
      [30, 'HPE_INVALID_METHOD', 400],
      [30, 'HPE_INVALID_HEADER_TOKEN', 400],
      [30, 'HPE_HEADER_OVERFLOW', 431],
    ]);
    for (const line of lines) {
      expect(line.remoteAddress).toMatch(/127\.0\.0\.1/);
      expect(typeof line.detail).toBe('string');
    }
    // Nothing of what the client sent is logged: not the padding, not a control character.
    for (const written of server.logs.filter((line) => line.includes(LINE))) {
      expect(written).not.toContain('aaaaaaaaaa');
      expect([...written].filter((char) => char < ' ')).toEqual([]);
      expect(written).not.toMatch(/\\u00[01][0-9a-f]/);
    }
    // The server goes on serving.
    expect((await fetch(`${server.url}/health`)).status).toBe(200);
  });

  test('a flood of 40 malformed requests is counted whole and logged in 10 lines', async () => {
    const server = await serverWith();
    const port = portOf(server);
    for (let index = 0; index < 40; index += 1) {
      const answer = await rawExchange(port, `NOT A REQUEST ${index}\r\n\r\n`, { resetEnds: true });
      expect(answer).toMatch(/^HTTP\/1\.1 400 /);
    }
    expect((await counted(server)).get('HPE_INVALID_METHOD')).toBe(40);
    // The lines reach the log stream after the answers: wait for them rather than count too early
    // (and pass only when exactly 10 are there).
    const lines = await waitFor(async () => {
      const found = refusedLines(server);
      return found.length >= 10 ? found : undefined;
    }, 'ten log lines');
    expect(lines).toHaveLength(10);
  });

  test('a reset of an idle connection is no request and is not counted; one cut off mid-headers is counted', async () => {
    const server = await serverWith();
    const reset = async (bytes: string) => {
      const accepted = once(server.app.server, 'connection') as Promise<[Socket]>;
      const socket = connect(portOf(server), '127.0.0.1');
      socket.on('error', () => {});
      const [onServer] = await accepted;
      // Not `once`: it rejects on the socket's 'error' (the reset), which comes before its 'close'.
      const gone = new Promise((resolve) => onServer.once('close', resolve));
      if (bytes) await new Promise((resolve) => socket.write(bytes, resolve));
      socket.resetAndDestroy();
      await gone; // 'clientError' comes before the server's socket closes
    };
    await reset('');
    expect([...(await counted(server))]).toEqual([]);
    expect(refusedLines(server)).toEqual([]);
    await reset('GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n');
    expect([...(await counted(server))]).toEqual([['HPE_INVALID_EOF_STATE', 1]]);
    const [line] = await waitFor(async () => {
      const found = refusedLines(server);
      return found.length === 1 ? found : undefined;
    }, 'its log line');
    // Node writes its 400 to the reset socket all the same (it goes nowhere), and so does the server.
    expect(line).toMatchObject({ reason: 'HPE_INVALID_EOF_STATE', status: 400 });
  });
});
