import { Agent, type Dispatcher, request } from 'undici';
import type { SqlRunner } from '../db/driver-sql.js';
import type { OutboxMessageRow } from '../db/models.js';
import { type ClaimedMessage, webhookSecrets } from '../db/outbox-sql.js';
import { upstreamExcerpt } from '../platform/outbound-http.js';
import { SIGNATURE_HEADER, signatureHeader } from '../platform/signature.js';

/**
 * One delivery attempt: a POST of the message's stored body, signed, to its URL. It never throws;
 * the outcome says what happened, in words fit for `lastError` (bounded, no secret, at most a
 * short excerpt of what the receiver answered).
 */

/** The part of a refusing receiver's answer kept in lastError. */
const ANSWER_EXCERPT_CHARS = 200;
/** Longest lastError stored. */
export const MAX_ERROR_CHARS = 500;

export type AttemptOutcome = { ok: true; statusCode: number } | { ok: false; statusCode: number | null; error: string };

/**
 * Keep-alive connections to the receivers, for every attempt of one worker. Redirects are never
 * followed (the agent has no redirect interceptor): a 3xx would carry the signed body elsewhere,
 * and it counts as a failed attempt. Connecting is bounded by the attempt's timeout.
 */
export function receiversAgent(timeoutMs: number): Agent {
  return new Agent({ keepAliveTimeout: 30_000, keepAliveMaxTimeout: 60_000, connect: { timeout: timeoutMs } });
}

/** undici's errors for a connection, an answer's headers or its body that did not come in time. */
const TIMEOUTS = new Set(['UND_ERR_CONNECT_TIMEOUT', 'UND_ERR_HEADERS_TIMEOUT', 'UND_ERR_BODY_TIMEOUT']);

/**
 * One attempt, within `timeoutMs` as a whole: connecting, sending, the answer's headers and
 * reading its body share one deadline (a receiver that drips its answer byte by byte is cut
 * there too), so the worker can derive its lock from it. One timer per attempt, cleared when it
 * ends; undici's per-phase timers stay as well, as they end a silent connection sooner.
 */
export async function deliverOnce(
  message: Pick<OutboxMessageRow, 'url' | 'body' | 'topic' | 'idempotencyKey' | 'attempts'>,
  secret: string,
  timeoutMs: number,
  agent: Agent,
  now = Date.now(),
): Promise<AttemptOutcome> {
  const deadline = new AbortController();
  const timer = setTimeout(() => deadline.abort(), timeoutMs);
  try {
    const response = await request(message.url, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        'idempotency-key': message.idempotencyKey,
        'x-event-topic': message.topic,
        'x-delivery-attempt': String(message.attempts),
        [SIGNATURE_HEADER]: signatureHeader(secret, message.body, Math.floor(now / 1000)),
      },
      body: message.body,
      headersTimeout: timeoutMs,
      bodyTimeout: timeoutMs,
      dispatcher: agent,
      signal: deadline.signal,
    });
    const { statusCode } = response;
    if (statusCode >= 200 && statusCode < 300) {
      // Read to the end so the connection goes back to the pool; what it says does not matter.
      await response.body.dump({ limit: 64 * 1024, signal: deadline.signal });
      // dump() stops quietly when the signal fires: the answer was not complete in time.
      if (deadline.signal.aborted) return { ok: false, statusCode: null, error: `no answer within ${timeoutMs} ms` };
      return { ok: true, statusCode };
    }
    const excerpt = await readExcerpt(response.body);
    const said = excerpt ? `: ${upstreamExcerpt(excerpt, ANSWER_EXCERPT_CHARS, [secret])}` : '';
    return { ok: false, statusCode, error: bounded(`the receiver answered HTTP ${statusCode}${said}`) };
  } catch (error) {
    if (deadline.signal.aborted || TIMEOUTS.has((error as { code?: string }).code ?? '')) {
      return { ok: false, statusCode: null, error: `no answer within ${timeoutMs} ms` };
    }
    return { ok: false, statusCode: null, error: bounded(`unreachable: ${networkProblem(error)}`) };
  } finally {
    clearTimeout(timer);
  }
}

/** The first bytes of an answer's body; the rest is not read (the connection is closed). */
async function readExcerpt(body: Dispatcher.ResponseData['body']): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of body) {
    chunks.push(chunk as Buffer);
    size += (chunk as Buffer).byteLength;
    if (size >= ANSWER_EXCERPT_CHARS * 4) {
      body.destroy();
      break;
    }
  }
  return new TextDecoder().decode(Buffer.concat(chunks, size)).replace(/\s+/g, ' ').trim();
}

function bounded(text: string): string {
  return text.length > MAX_ERROR_CHARS ? `${text.slice(0, MAX_ERROR_CHARS - 1)}…` : text;
}

function networkProblem(error: unknown): string {
  if (!(error instanceof Error)) return String(error).slice(0, 100);
  const { code, cause } = error as Error & { code?: string; cause?: Error & { code?: string } };
  return (code ?? cause?.code ?? cause?.message ?? error.message).slice(0, 200);
}

/** A claimed message with what its attempt needs, read before the attempt starts. */
export interface ReadyMessage {
  message: ClaimedMessage;
  /** The key that signs it; null: it cannot be sent (its webhook was removed, or no push secret). */
  secret: string | null;
  /** The receiver's host:port, for the worker's cap on attempts in flight per receiver. */
  host: string;
}

/**
 * What the attempts of a claim need, read once for the whole claim (one query for its webhooks,
 * none kept: a removed webhook's secret is gone with it). A webhook removed after its message was
 * written (a drain in flight, another instance's cached list) is found here: secret null.
 */
export async function prepareAttempts(
  db: SqlRunner,
  claimed: readonly ClaimedMessage[],
  paymentSecret: string | null,
): Promise<ReadyMessage[]> {
  const webhookIds = [...new Set(claimed.flatMap((message) => (message.webhookId ? [message.webhookId] : [])))];
  const secrets = await webhookSecrets(db, webhookIds);
  return claimed.map((message) => ({
    message,
    secret: message.kind === 'payment' ? paymentSecret : (secrets.get(message.webhookId ?? '') ?? null),
    host: hostOf(message.url),
  }));
}

/** host:port of a receiver URL (stored URLs were validated when written; anything else is its own group). */
function hostOf(url: string): string {
  try {
    return new URL(url).host;
  } catch {
    return url;
  }
}
