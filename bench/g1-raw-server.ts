/**
 * Baseline of the G1 benchmark (bench/g1.ts): a bare `node:http` server in its own process that
 * reads each POST body and answers it with the status, content type and bytes the subject answered
 * for that body (handed over by the parent over IPC): the least work any server can do to give
 * the same answer. It loads nothing of the application.
 */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { G1Request, RawAnswer } from './g1-protocol.js';
import { cpuSample, failed, fdLimit, send, serve } from './lib/fanout-child.js';

interface Answer {
  status: number;
  headers: Record<string, string | number>;
  body: Buffer;
}

async function main(): Promise<void> {
  let answers = new Map<string, Answer>();
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      const answer = answers.get(Buffer.concat(chunks).toString('utf8'));
      if (answer) res.writeHead(answer.status, answer.headers).end(answer.body);
      else res.writeHead(404).end();
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const setAnswers = (list: RawAnswer[]) => {
    answers = new Map(
      list.map(({ requestBody, status, contentType, body }) => {
        const bytes = Buffer.from(body, 'utf8');
        const headers = { 'content-type': contentType, 'content-length': bytes.length };
        return [requestBody, { status, headers, body: bytes }];
      }),
    );
    return answers.size;
  };
  serve<G1Request>(
    async (request) =>
      request.type === 'cpu' ? cpuSample() : request.type === 'answers' ? setAnswers(request.answers) : null,
    async () => {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  );
  const { port } = server.address() as AddressInfo;
  send({ type: 'ready', url: `http://127.0.0.1:${port}/graphql`, fdLimit: fdLimit(), pid: process.pid });
}

main().catch(failed);
