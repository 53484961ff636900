import { redactSecrets, rememberSecret } from './redact.js';

/**
 * One outgoing JSON-over-HTTP call, shared by our upstream clients (the app service, the
 * developers' credential services, the chart repo). It never throws: what happened comes back as
 * an OutboundOutcome, which each client words in its own terms and maps to its own error kinds.
 * The call as a whole (the answer's body included) is bounded in time and in size, so an upstream
 * that stalls or streams without end cannot hold a task or the collector, nor fill our memory.
 */

/**
 * Answers larger than this are refused, whatever they say. Far above any real answer (the chart
 * repo's status of a big cluster is a few MB), far below what would hurt the process.
 */
export const DEFAULT_MAX_RESPONSE_BYTES = 8 * 1024 * 1024;

export interface OutboundRequest {
  url: string;
  /** @default 'GET' */
  method?: 'GET' | 'POST';
  headers?: Record<string, string>;
  /** Sent as the JSON body, with `content-type: application/json`. */
  json?: unknown;
  /** For the whole call, reading the answer's body included. */
  timeoutMs: number;
  /** @default DEFAULT_MAX_RESPONSE_BYTES */
  maxResponseBytes?: number;
  /**
   * Whether a redirect is followed. A redirect would carry the request's headers and body (our
   * service credential, a buyer's signature) to wherever it points, so by default it is not: the
   * 3xx comes back as the answer it is. @default false
   */
  followRedirects?: boolean;
  /**
   * Secret values the request carries. They are remembered before the request leaves, so that an
   * upstream quoting them later, through another door, is cleaned too, and they are redacted from
   * the outcome's `problem`.
   */
  secrets?: readonly (string | null | undefined)[];
}

export type OutboundOutcome =
  /** No complete answer within `timeoutMs`. */
  | { kind: 'timeout' }
  /** No answer at all; `problem` names why (ECONNREFUSED, ENOTFOUND …), without secrets. */
  | { kind: 'unreachable'; problem: string }
  /** An answer whose body exceeds `limit` bytes; it was not read further. */
  | { kind: 'too_large'; status: number; limit: number; durationMs: number }
  | {
      kind: 'answered';
      status: number;
      /** Whether the status is 2xx. */
      ok: boolean;
      /** Whether the body parsed as JSON; `body` is undefined when it did not. */
      isJson: boolean;
      body: unknown;
      durationMs: number;
    };

/** Sends one request and reads its answer as JSON; see OutboundOutcome for what can come back. */
export async function fetchJson(request: OutboundRequest): Promise<OutboundOutcome> {
  const limit = request.maxResponseBytes ?? DEFAULT_MAX_RESPONSE_BYTES;
  const secrets = request.secrets ?? [];
  rememberSecret(...secrets);
  const headers = { ...request.headers };
  if (request.json !== undefined) headers['content-type'] = 'application/json';

  const startedAt = performance.now();
  let status: number;
  let text: string | null;
  try {
    const response = await fetch(request.url, {
      method: request.method ?? 'GET',
      headers,
      ...(request.json === undefined ? {} : { body: JSON.stringify(request.json) }),
      // Covers reading the body too: the stream errors once the signal fires.
      signal: AbortSignal.timeout(request.timeoutMs),
      redirect: request.followRedirects ? 'follow' : 'manual',
    });
    status = response.status;
    text = await readText(response, limit);
  } catch (error) {
    if (isTimeout(error)) return { kind: 'timeout' };
    return { kind: 'unreachable', problem: redactSecrets(networkProblem(error), secrets) };
  }
  const durationMs = Math.round(performance.now() - startedAt);
  if (text === null) return { kind: 'too_large', status, limit, durationMs };

  const ok = status >= 200 && status < 300;
  try {
    return { kind: 'answered', status, ok, isJson: true, body: JSON.parse(text), durationMs };
  } catch {
    return { kind: 'answered', status, ok, isJson: false, body: undefined, durationMs };
  }
}

/** The body as text, or null once it exceeds `limit` bytes (fetch itself has no such bound). */
async function readText(response: Response, limit: number): Promise<string | null> {
  const declared = Number(response.headers.get('content-length') ?? 0);
  if (declared > limit || !response.body) {
    await response.body?.cancel();
    return declared > limit ? null : '';
  }
  const chunks: Uint8Array[] = [];
  let size = 0;
  for await (const chunk of response.body) {
    size += chunk.byteLength;
    // Leaving the loop early cancels the stream, which closes the connection.
    if (size > limit) return null;
    chunks.push(chunk);
  }
  // Decoded as Response.text() decodes: UTF-8, a leading byte-order mark dropped.
  return new TextDecoder().decode(Buffer.concat(chunks));
}

/**
 * Upstream text fit for a message, a log line or a stored field: secrets redacted first, then cut
 * to `max`, so that a cut cannot leave behind a piece of a secret too short to be recognised.
 */
export function upstreamExcerpt(text: string, max: number, secrets?: readonly (string | null | undefined)[]): string {
  return redactSecrets(text, secrets).slice(0, max);
}

/** Whether fetch gave up because of its AbortSignal.timeout. */
function isTimeout(error: unknown): boolean {
  return (
    error instanceof Error &&
    (error.name === 'TimeoutError' || (error.cause as Error | undefined)?.name === 'TimeoutError')
  );
}

/** fetch says only "fetch failed"; the reason (ECONNREFUSED, ENOTFOUND …) is in its cause. */
function networkProblem(error: unknown): string {
  if (!(error instanceof Error)) return String(error);
  const cause = error.cause as (Error & { code?: string }) | undefined;
  return cause?.code ?? cause?.message ?? error.message;
}
