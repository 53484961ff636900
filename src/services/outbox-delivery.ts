import type { IncomingHttpHeaders } from 'node:http';
import type { Dispatcher } from 'undici';
import type { SqlRunner } from '../db/driver-sql.js';
import type { OutboxMessageRow } from '../db/models.js';
import { type ClaimedMessage, type FailedAttempt, webhookSecrets } from '../db/outbox-sql.js';
import { clipText } from '../platform/clip-text.js';
import { outboundAgent } from '../platform/outbound-agent.js';
import { networkProblem, retryAfterMs, upstreamExcerpt } from '../platform/outbound-http.js';
import { rememberSecret } from '../platform/redact.js';
import { SIGNATURE_HEADER, signatureHeader } from '../platform/signature.js';
import type { PushDestination, PushDestinations } from './outbox-messages.js';

/**
 * One delivery attempt: a POST of the message's stored body, signed, to its URL. It never throws;
 * the outcome says what happened, in words fit for `lastError` (bounded, no secret, at most a
 * short excerpt of what the receiver answered).
 */

/**
 * Puts secrets the outbox signs with on the process's list of secrets redacted from what comes
 * back from outside (platform/redact.ts), which a refusing receiver's answer goes through on its
 * way to lastError and the log: PAYMENT_PUSH_SECRET and every webhook's secret, wherever this
 * process makes or reads them (the webhook list, read at start and every few seconds while changes
 * come; an added webhook; each claim's signing keys). A receiver echoing any of them, not only its
 * message's own key (one webhook's receiver quoting another's), shows `[redacted]`.
 */
export function rememberOutboundSecrets(secrets: Iterable<string | null | undefined>): void {
  rememberSecret(...secrets);
}

/** The part of a refusing receiver's answer kept in lastError. */
const ANSWER_EXCERPT_CHARS = 200;
/** Longest lastError stored. */
export const MAX_ERROR_CHARS = 500;

/** A failure's `retryAfterMs`: the wait a 429's or 503's `Retry-After` asked for (seconds or a date). */
export type AttemptOutcome =
  | { ok: true; statusCode: number }
  | { ok: false; statusCode: number | null; error: string; retryAfterMs?: number };

/**
 * Keep-alive connections to the receivers, for every attempt of one worker. Redirects are never
 * followed (the agent has no redirect interceptor): a 3xx would carry the signed body elsewhere,
 * and it counts as a failed attempt. Connecting is bounded by the attempt's timeout. Through the
 * proxy the standard variables name, if any (outbound-agent.ts).
 */
export function receiversAgent(timeoutMs: number): Dispatcher {
  return outboundAgent({ keepAliveTimeout: 30_000, keepAliveMaxTimeout: 60_000, connect: { timeout: timeoutMs } });
}

type TimingSettings = { attemptTimeoutMs: number };

/** Margin after an attempt's deadline for recording its outcome before its lock expires. */
export function recordMarginMs({ attemptTimeoutMs }: TimingSettings): number {
  return Math.min(5_000, attemptTimeoutMs);
}

/**
 * A claim's lock covers a wait in the worker's queue of up to one attempt timeout, then the
 * attempt (which ends by its deadline, OUTBOX_ATTEMPT_TIMEOUT_MS) and the margin for recording
 * it. A message that waited longer (slow receivers hold every slot) is given back rather than
 * sent with a lock that could expire during its attempt.
 */
export function claimLockMs(settings: TimingSettings): number {
  return 2 * settings.attemptTimeoutMs + recordMarginMs(settings);
}

/** undici's errors for a connection, an answer's headers or its body that did not come in time. */
const TIMEOUTS = new Set(['UND_ERR_CONNECT_TIMEOUT', 'UND_ERR_HEADERS_TIMEOUT', 'UND_ERR_BODY_TIMEOUT']);
/** Most of a 2xx answer's body read (and dropped); past it the connection is closed, still delivered. */
const ACCEPTED_BODY_BYTES = 64 * 1024;

/**
 * One attempt, within `timeoutMs` as a whole: connecting, sending, the answer's headers and
 * reading its body share one deadline (a receiver that drips its answer byte by byte is cut
 * there too), so the worker can derive its lock from it. undici's per-phase timeouts stay as
 * well, as they end a silent connection sooner.
 *
 * On undici's dispatcher API (`Dispatcher.dispatch` with a handler) rather than `request()`:
 * `request()` gives every attempt an AbortController for the deadline, an async resource and a
 * readable stream for the answer, ~25 µs of CPU a delivery that the outbox benchmark's profile
 * put at an eighth of the worker's cost; the handler below reads the answer as it comes and
 * cuts the attempt with the dispatcher's own `abort`.
 */
export function deliverOnce(
  message: Pick<OutboxMessageRow, 'url' | 'body' | 'topic' | 'idempotencyKey' | 'attempts'>,
  secret: string,
  timeoutMs: number,
  agent: Dispatcher,
  now = Date.now(),
): Promise<AttemptOutcome> {
  return new Promise((resolve) => {
    let target: URL;
    try {
      target = new URL(message.url ?? '');
    } catch {
      resolve({ ok: false, statusCode: null, error: 'unreachable: not a valid URL' });
      return;
    }
    const signature = signatureHeader(secret, message.body, Math.floor(now / 1000));
    const attempt = new Attempt(resolve, [secret, signature, ...credentialsIn(target)], timeoutMs);
    agent.dispatch(
      {
        origin: target.origin,
        path: `${target.pathname}${target.search}`,
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          'idempotency-key': message.idempotencyKey,
          'x-event-topic': message.topic,
          'x-delivery-attempt': String(message.attempts),
          [SIGNATURE_HEADER]: signature,
        },
        body: message.body,
        headersTimeout: timeoutMs,
        bodyTimeout: timeoutMs,
      },
      attempt,
    );
  });
}

/**
 * What a receiver's URL carries that is a credential: its user info and query values (a push or
 * webhook URL such as `…/frontend?t=…`, whose parameter no name rule recognises). Values under 8
 * characters are left (`?v=2` is no secret, and redacting every "2" would garble the answer).
 */
function credentialsIn(url: URL): string[] {
  // As written (a receiver quoting its URL) and decoded (one quoting the value it read).
  const raw = [
    url.username,
    url.password,
    ...url.search
      .slice(1)
      .split('&')
      .map((pair) => pair.split('=')[1] ?? ''),
  ];
  const values = [...raw, ...raw.map(decoded), ...url.searchParams.values()];
  return [...new Set(values)].filter((value) => value.length >= 8);
}

function decoded(text: string): string {
  try {
    return decodeURIComponent(text);
  } catch {
    return text; // a malformed escape: as written
  }
}

/** The handler of one attempt: settles its outcome once, whichever of answer, error or deadline comes first. */
class Attempt implements Dispatcher.DispatchHandler {
  private controller: Dispatcher.DispatchController | null = null;
  private settled = false;
  private statusCode = 0;
  /** The first bytes of a refusing answer (not 2xx), for lastError; null while the answer is 2xx. */
  private excerpt: Buffer[] | null = null;
  private received = 0;
  /** What a 429's or 503's Retry-After asks for, in ms; null without one. */
  private retryAfterMs: number | null = null;
  /** The answer ended (completely or in an error): nothing is left to cut. */
  private ended = false;
  private readonly deadline: NodeJS.Timeout;

  constructor(
    private readonly resolve: (outcome: AttemptOutcome) => void,
    /** What its receiver must not see quoted back in lastError: the key, the signature, the URL's credentials. */
    private readonly secrets: string[],
    private readonly timeoutMs: number,
  ) {
    this.deadline = setTimeout(() => {
      // An answer begun but not ended (a receiver dripping its body) says so, with its status: read
      // as "no answer", a 200 that dripped looked like a receiver that never answered.
      const began = this.statusCode >= 200;
      const error = began
        ? `answered ${this.statusCode}, but the answer did not end within ${timeoutMs} ms`
        : `no answer within ${timeoutMs} ms`;
      this.settle({ ok: false, statusCode: began ? this.statusCode : null, error });
    }, timeoutMs);
  }

  onRequestStart(controller: Dispatcher.DispatchController): void {
    this.controller = controller;
    // The deadline passed while the request waited for a connection: it is not sent late.
    if (this.settled) controller.abort(new Error('the attempt is over'));
  }

  onResponseStart(_controller: Dispatcher.DispatchController, statusCode: number, headers: IncomingHttpHeaders): void {
    if (statusCode < 200) return; // 1xx: informational, the answer follows
    this.statusCode = statusCode;
    if (statusCode >= 300) this.excerpt = [];
    if (statusCode === 429 || statusCode === 503) {
      const header = headers['retry-after'];
      this.retryAfterMs = retryAfterMs(Array.isArray(header) ? header[0] : header, Date.now());
    }
  }

  onResponseData(_controller: Dispatcher.DispatchController, chunk: Buffer): void {
    this.received += chunk.byteLength;
    if (this.excerpt === null) {
      if (this.received > ACCEPTED_BODY_BYTES) this.settle({ ok: true, statusCode: this.statusCode });
      return;
    }
    this.excerpt.push(chunk);
    if (this.received >= ANSWER_EXCERPT_CHARS * 4) this.settle(this.refused());
  }

  onResponseEnd(): void {
    this.ended = true;
    this.settle(this.excerpt === null ? { ok: true, statusCode: this.statusCode } : this.refused());
  }

  onResponseError(_controller: Dispatcher.DispatchController, error: Error): void {
    this.ended = true;
    if (TIMEOUTS.has((error as { code?: string }).code ?? '')) {
      this.settle({ ok: false, statusCode: null, error: `no answer within ${this.timeoutMs} ms` });
    } else {
      this.settle({
        ok: false,
        statusCode: null,
        error: clipText(`unreachable: ${networkProblem(error)}`, MAX_ERROR_CHARS),
      });
    }
  }

  private refused(): AttemptOutcome {
    const chunks = this.excerpt ?? [];
    const text = new TextDecoder().decode(Buffer.concat(chunks)).replace(/\s+/g, ' ').trim();
    const said = text ? `: ${upstreamExcerpt(text, ANSWER_EXCERPT_CHARS, this.secrets)}` : '';
    const error = clipText(`the receiver answered HTTP ${this.statusCode}${said}`, MAX_ERROR_CHARS);
    const asked = this.retryAfterMs === null ? {} : { retryAfterMs: this.retryAfterMs };
    return { ok: false, statusCode: this.statusCode, error, ...asked };
  }

  /** The outcome, once; an answer still coming is cut (its connection closed, not reused). */
  private settle(outcome: AttemptOutcome): void {
    if (this.settled) return;
    this.settled = true;
    clearTimeout(this.deadline);
    this.resolve(outcome);
    if (!this.ended) this.controller?.abort(new Error('the attempt is over'));
  }
}

/**
 * The record of a failed attempt: retried after BASE × 2^(attempts − 1), at most MAX, at a random
 * point in the upper half of that pause (receivers coming back are not hit by every sender at
 * once), or after the Retry-After of a 429 or 503 when that is later (also at most MAX, which
 * lastError then says); dead once `final` (it cannot be sent), the receiver answered 410 Gone (it
 * says the message's resource is gone for good: sending it again cannot help) or its attempts
 * reached the limit.
 */
export function failedAttempt(
  settings: { maxAttempts: number; backoffBaseMs: number; backoffMaxMs: number },
  message: Pick<ClaimedMessage, 'id' | 'attempts'>,
  outcome: AttemptOutcome & { ok: false },
  final: boolean,
  now: Date,
): FailedAttempt {
  const { maxAttempts, backoffBaseMs, backoffMaxMs } = settings;
  const gone = outcome.statusCode === GONE;
  const dead = final || gone || message.attempts >= maxAttempts;
  const pause = Math.min(backoffMaxMs, backoffBaseMs * 2 ** Math.max(0, message.attempts - 1));
  const jittered = Math.round(pause / 2 + (Math.random() * pause) / 2);
  const asked = outcome.retryAfterMs ?? 0;
  const wait = Math.min(backoffMaxMs, Math.max(jittered, asked));
  const note = gone
    ? ' (410 Gone: dead-lettered at once, not retried)'
    : dead || asked <= jittered
      ? ''
      : asked > backoffMaxMs
        ? ` (its Retry-After, ${seconds(asked)}, is past OUTBOX_BACKOFF_MAX_MS: retried after ${seconds(backoffMaxMs)})`
        : ` (retried after its Retry-After, ${seconds(asked)})`;
  return {
    id: message.id,
    status: dead ? 'DEAD' : 'PENDING',
    nextAttemptAt: dead ? now : new Date(now.getTime() + wait),
    lastError: note ? `${clipText(outcome.error, MAX_ERROR_CHARS - note.length)}${note}` : outcome.error,
    lastStatusCode: outcome.statusCode,
    // A claim past the limit (the last attempt died with its process) was no attempt: not counted.
    attempts: Math.min(message.attempts, maxAttempts),
  };
}

/** A wait in lastError: seconds, to a tenth. */
function seconds(ms: number): string {
  return `${Math.round(ms / 100) / 10} s`;
}

/** The status of a receiver that says the message's resource is gone for good: not retried. */
const GONE = 410;

/** Why a webhook message is not sent: its webhook is gone (the worker deletes such a message). */
export const WEBHOOK_REMOVED = 'its webhook was removed';

/** A message the worker is done with: delivered, or dead-lettered (see OutboxWorker's `onSettled`). */
export interface SettledMessage {
  id: number;
  kind: string;
  topic: string;
  notificationId: number | null;
  status: 'DELIVERED' | 'DEAD';
  attempts: number;
  lastError: string | null;
}

/** A claimed message with what its attempt needs, read before the attempt starts. */
export interface ReadyMessage {
  message: ClaimedMessage;
  /** The key that signs it; null: it cannot be sent (its webhook was removed, or no push secret). */
  secret: string | null;
  /** Why it is dead-lettered instead of sent (its `lastError`), or null: it is sent. */
  refused: string | null;
  /** The receiver's host:port, for the worker's cap on attempts in flight per receiver. */
  host: string;
}

/** Where a payment push goes when its receiver has no URL (any more): the setting to give it one. */
const DESTINATION_SETTING: Record<PushDestination, string> = {
  wallet: 'PAYMENT_WALLET_PUSH_URL',
  frontend: 'PAYMENT_FRONTEND_PUSH_URL',
};

/**
 * What the attempts of a claim need, read once for the whole claim (one query for its webhooks,
 * none kept: a removed webhook's secret is gone with it). A webhook removed after its message was
 * written (a drain in flight, another instance's cached list) is found here: secret null.
 *
 * A payment push names its receiver (`destination`): its URL is this process's setting now, so a
 * URL changed since the push was written (and the instance restarted) applies to it. A worker
 * claims no push for a receiver it has no URL for (claimDueMessages): one found here all the same
 * (a caller that claimed without saying) is dead-lettered. A message written with a URL (a
 * webhook's; a payment push of a release before) keeps it.
 *
 * A claim counts an attempt (so a message that kills the process at every try still reaches the
 * limit), and an attempt that ends with its process never reports: a message claimed past
 * `maxAttempts` had its last attempt die that way, and is not sent again. Without this check, a
 * message with OUTBOX_MAX_ATTEMPTS 2 whose attempts kept dying was sent 4 times.
 */
export async function prepareAttempts(
  db: SqlRunner,
  claimed: readonly ClaimedMessage[],
  paymentSecret: string | null,
  maxAttempts: number,
  destinations: PushDestinations = NO_DESTINATIONS,
): Promise<ReadyMessage[]> {
  const webhookIds = [...new Set(claimed.flatMap((message) => (message.webhookId ? [message.webhookId] : [])))];
  const secrets = await webhookSecrets(db, webhookIds);
  rememberOutboundSecrets([paymentSecret, ...secrets.values()]); // before any attempt that could echo them
  return claimed.map((stored) => {
    const destination = stored.destination as PushDestination | null;
    const message = destination ? { ...stored, url: destinations[destination] ?? null } : stored;
    const secret = message.kind === 'payment' ? paymentSecret : (secrets.get(message.webhookId ?? '') ?? null);
    const refused =
      secret === null
        ? message.kind === 'payment'
          ? 'no PAYMENT_PUSH_SECRET to sign it'
          : WEBHOOK_REMOVED
        : destination && !message.url
          ? `no ${DESTINATION_SETTING[destination] ?? destination} to send it to`
          : message.attempts > maxAttempts
            ? `its ${maxAttempts} attempts (OUTBOX_MAX_ATTEMPTS) were made; the last never reported (its process ended during it)`
            : null;
    return { message, secret, refused, host: hostOf(message.url) };
  });
}

const NO_DESTINATIONS: PushDestinations = { wallet: null, frontend: null };

/** host:port of a receiver URL (stored URLs were validated when written; anything else is its own group). */
function hostOf(url: string | null): string {
  try {
    return new URL(url ?? '').host;
  } catch {
    return url ?? '';
  }
}

/** The log line of a failed attempt that will be retried. */
export const RETRY_LINE = 'outbox: delivery failed, will retry';

/**
 * Where a message was going, for its log lines, so an operator can tell which receiver is down:
 * the webhook or the push's receiver, and the host of its stored URL (whose path or query may
 * hold a token).
 */
export function receiverOf(message: Pick<ClaimedMessage, 'topic' | 'webhookId' | 'url' | 'destination'>) {
  const { topic, webhookId, url, destination } = message;
  return { topic, ...(webhookId ? { webhookId } : { destination }), ...(url ? { host: hostOf(url) } : {}) };
}

/** What tells a message's receiver (receiverKey), and finds the other messages going to it. */
export type Receiver = Pick<ClaimedMessage, 'kind' | 'topic' | 'webhookId' | 'destination'>;

/** Which receiver a message goes to, for the figures: its webhook, or the push's destination (else its topic). */
export function receiverKey(message: Receiver): string {
  return message.webhookId ?? message.destination ?? message.topic;
}
