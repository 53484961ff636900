import { createServer, type IncomingHttpHeaders, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

/**
 * A stand-in for developers' credential services on a real port, so
 * HttpDeveloperService and the purchase polling are tested over real HTTP. All developers share
 * the one server: `POST /<developer>/ActivateAndGrant`, which is what `urlTemplate` produces.
 *
 * Usage:
 * ```ts
 * const fake = await startFakeDeveloperService();
 * const service = new HttpDeveloperService({ urlTemplate: fake.urlTemplate, timeoutMs: 1_000, logger });
 * fake.setBehaviour({ respond: 'json', body: { code: 1501 } });              // every developer
 * fake.setBehaviour({ respond: 'hang' }, 'acme.olares.com');                 // just this one
 * fake.setBehaviour({ respond: 'sequence', steps: [noRecord, noRecord, grant] });
 * fake.requests; // every request, in order
 * await fake.stop();
 * ```
 * With no behaviour set, every query is granted (`grant` below).
 */

/** One answer. */
export type DeveloperStep =
  /** HTTP 200 `{code: 0, data: {verifiableCredential}}`; the credential is `vc-<developer>` unless given. */
  | { respond: 'grant'; vc?: string }
  /** This JSON as it is (any shape), with HTTP 200 unless another status is given. */
  | { respond: 'json'; body: unknown; status?: number }
  /** Any HTTP status, with a JSON body when given. */
  | { respond: 'http-error'; status: number; body?: unknown }
  /** HTTP 200 with a body that is not JSON. */
  | { respond: 'garbage' }
  /** Never answers (until the client gives up or `stop` is called). */
  | { respond: 'hang' }
  /** Answers with `answer` once `released` settles: for what happens while a query is out. */
  | { respond: 'after'; released: Promise<unknown>; answer: DeveloperStep };

export type DeveloperBehaviour =
  | DeveloperStep
  /** The i-th call (counted from when this behaviour was set) gets the i-th step; the last step repeats. */
  | { respond: 'sequence'; steps: DeveloperStep[] };

export interface RecordedDeveloperRequest {
  method: string;
  /** As sent, still percent-encoded. */
  path: string;
  /** The decoded developer segment of `/<developer>/ActivateAndGrant`; null for any other path. */
  developer: string | null;
  headers: IncomingHttpHeaders;
  /** Parsed JSON, the raw text when it is not JSON, or undefined when there was no body. */
  body: unknown;
}

export interface FakeDeveloperService {
  /** `http://127.0.0.1:<port>` */
  url: string;
  /** `http://127.0.0.1:<port>/{developer}/ActivateAndGrant`, for HttpDeveloperService. */
  urlTemplate: string;
  requests: RecordedDeveloperRequest[];
  /** For one developer (matched lower-cased, as the URL carries it), or for all that have none of their own. */
  setBehaviour(behaviour: DeveloperBehaviour, developer?: string): void;
  /** Back to granting everything, with no recorded requests. */
  reset(): void;
  /** Closes the server, cutting off requests that hang. */
  stop(): Promise<void>;
}

interface ActiveBehaviour {
  behaviour: DeveloperBehaviour;
  /** Calls answered under this behaviour, for sequences. */
  calls: number;
}

const ROUTE = /^\/([^/]+)\/ActivateAndGrant$/;

export async function startFakeDeveloperService(): Promise<FakeDeveloperService> {
  const requests: RecordedDeveloperRequest[] = [];
  const perDeveloper = new Map<string, ActiveBehaviour>();
  let global: ActiveBehaviour | null = null;

  const server = createServer(async (req, res) => {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const text = Buffer.concat(chunks).toString('utf8');
    const path = new URL(req.url ?? '/', 'http://fake').pathname;
    const match = ROUTE.exec(path);
    const developer = match?.[1] === undefined ? null : decodeSegment(match[1]);
    const method = req.method ?? '';
    requests.push({ method, path, developer, headers: req.headers, body: text === '' ? undefined : parseJson(text) });

    if (developer === null || method !== 'POST') return reply(res, 404, { error: `no route ${method} ${path}` });
    const active = perDeveloper.get(developer) ?? global;
    if (!active) return answer(res, { respond: 'grant' }, developer);
    active.calls += 1;
    const { behaviour } = active;
    if (behaviour.respond !== 'sequence') return answer(res, behaviour, developer);
    // setBehaviour refuses empty sequences, so there is always a step.
    return answer(res, behaviour.steps[Math.min(active.calls, behaviour.steps.length) - 1]!, developer);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  const url = `http://127.0.0.1:${port}`;

  return {
    url,
    urlTemplate: `${url}/{developer}/ActivateAndGrant`,
    requests,
    setBehaviour(behaviour, developer) {
      if (behaviour.respond === 'sequence' && behaviour.steps.length === 0) {
        throw new Error('a sequence behaviour needs at least one step');
      }
      const active = { behaviour, calls: 0 };
      if (developer === undefined) global = active;
      else perDeveloper.set(developer.toLowerCase(), active);
    },
    reset() {
      perDeveloper.clear();
      global = null;
      requests.length = 0;
    },
    async stop() {
      // Hanging requests keep their sockets open; close() alone would wait for them forever.
      server.closeAllConnections();
      await new Promise<void>((resolve, reject) => server.close((error) => (error ? reject(error) : resolve())));
    },
  };
}

function answer(res: ServerResponse, step: DeveloperStep, developer: string): void {
  switch (step.respond) {
    case 'grant':
      reply(res, 200, { code: 0, data: { verifiableCredential: step.vc ?? `vc-${developer}` } });
      return;
    case 'json':
      reply(res, step.status ?? 200, step.body);
      return;
    case 'http-error':
      reply(res, step.status, step.body);
      return;
    case 'garbage':
      res.writeHead(200, { 'content-type': 'text/html' }).end('<html>502 Bad Gateway</html>');
      return;
    case 'hang':
      return;
    case 'after':
      void step.released.then(() => answer(res, step.answer, developer));
      return;
  }
}

/** A malformed escape must not crash the handler; the raw segment is as good a name as any. */
function decodeSegment(segment: string): string {
  try {
    return decodeURIComponent(segment);
  } catch {
    return segment;
  }
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

function reply(res: ServerResponse, status: number, body: unknown): void {
  if (body === undefined) {
    res.writeHead(status).end();
    return;
  }
  res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body));
}
