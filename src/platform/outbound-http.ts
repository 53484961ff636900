import { promisify } from 'node:util';
import { brotliDecompress, gunzip, inflate, inflateRaw, type ZlibOptions } from 'node:zlib';
import { type Dispatcher, request } from 'undici';
import { holdsMoreJsonValues } from './json-values.js';
import { outboundPool } from './outbound-agent.js';
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

/**
 * Answers holding more JSON values than this (member names counted) are refused before they are
 * parsed: JSON.parse blocks the event loop for its whole run, and its cost follows the values it
 * creates, whatever the bytes. Measured on the 2-core development machine under load (2026-12-05,
 * Node 20; median JSON.parse ÷ values): real catalogue answers, the fixture of a public source
 * scaled up, 0.4–1.2 µs per value (an index of 10,000 apps: 4.5 MB, 298k values, 290 ms; one of
 * 50,000 apps: 22.7 MB, 1.49M values, 1.8 s; a details batch of 100 apps: 0.6 MB, 17k values,
 * 8 ms), while `[{},{},…]` takes 2 µs per value and fits 11 million values in 32 MiB (39 s, 736
 * MB of heap). At this bound such text blocks for at most ~2 s, and an index of ~30 values per app
 * passes up to ~33,000 apps. Counting (json-values.ts) costs 2–8 % of the parse it spares (the
 * 10,000-app index: 5–24 ms), and answers under 2 MB, which cannot hold that many, are not counted.
 */
export const DEFAULT_MAX_JSON_VALUES = 1_000_000;

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
  /** @default DEFAULT_MAX_JSON_VALUES */
  maxJsonValues?: number;
  /**
   * Whether a redirect is followed. A redirect would carry the request's headers and body (our
   * service credential, a buyer's signature) to wherever it points, so by default it is not: the
   * 3xx comes back as the answer it is. @default false
   */
  followRedirects?: boolean;
  /**
   * Whether the request may go on a kept-alive connection of an earlier call. False for a request
   * that must not be sent twice, which a connection closed under it leaves in doubt (see A
   * CONNECTION OF ITS OWN, outbound-agent.ts). @default true
   */
  reuseConnection?: boolean;
  /**
   * Secret values the request carries. They are remembered before the request leaves, so that an
   * upstream quoting them later, through another door, is cleaned too, and they are redacted from
   * the outcome's `problem`.
   */
  secrets?: readonly (string | null | undefined)[];
  /**
   * The caller's cancel (a stop cutting a sync short): once it fires, the call is abandoned, its
   * connection closed, and fetchJson rejects with the signal's reason instead of resolving: a
   * call the caller gave up is no outcome of the upstream's (not a timeout, not unreachable).
   */
  signal?: AbortSignal;
}

export type OutboundOutcome =
  /** No complete answer within `timeoutMs` to a request that was sent (written on its connection). */
  | { kind: 'timeout' }
  /**
   * No answer at all; `problem` names why (ECONNREFUSED, ENOTFOUND, CONNECT_TIMEOUT when `timeoutMs`
   * ended before a connection took the request …), without secrets.
   */
  | { kind: 'unreachable'; problem: string }
  /** An answer whose body exceeds `limit` bytes; it was not read further. */
  | { kind: 'too_large'; status: number; limit: number; durationMs: number }
  /** An answer holding more than `limit` JSON values (see DEFAULT_MAX_JSON_VALUES); it was not parsed. */
  | { kind: 'too_many_values'; status: number; limit: number; durationMs: number }
  | {
      kind: 'answered';
      status: number;
      /** Whether the status is 2xx. */
      ok: boolean;
      /** Whether the body parsed as JSON; `body` is undefined when it did not. */
      isJson: boolean;
      body: unknown;
      durationMs: number;
      /** The answer's `Retry-After` header, when it has one: how long an upstream refusing the call asks us to wait. */
      retryAfter?: string;
      /**
       * The answer's `content-encoding` when its body could not be decoded (an encoding other than
       * gzip, deflate and br, or a corrupt body); `isJson` is false then.
       */
      undecoded?: string;
    };

/** Why an answer was not read, in the words every caller puts after `answered …`. */
export function unreadBody(outcome: { kind: 'too_large' | 'too_many_values'; limit: number }): string {
  return outcome.kind === 'too_large'
    ? `a body larger than ${outcome.limit} bytes`
    : `a body of more than ${outcome.limit} JSON values`;
}

/** Sends one request and reads its answer as JSON; see OutboundOutcome for what can come back. */
export async function fetchJson(outbound: OutboundRequest): Promise<OutboundOutcome> {
  const limit = outbound.maxResponseBytes ?? DEFAULT_MAX_RESPONSE_BYTES;
  const secrets = outbound.secrets ?? [];
  rememberSecret(...secrets);
  const headers = { ...outbound.headers };
  if (outbound.json !== undefined) headers['content-type'] = 'application/json';

  const startedAt = performance.now();
  outbound.signal?.throwIfAborted();
  // Covers reading the body too: the body stream errors once the signal fires.
  const timeout = AbortSignal.timeout(outbound.timeoutMs);
  const signal = outbound.signal ? AbortSignal.any([timeout, outbound.signal]) : timeout;
  const written = { yet: false };
  let status: number;
  let bytes: Buffer | null;
  let encoding: string | undefined;
  let retryAfter: string | undefined;
  try {
    const sending = request(outbound.url, {
      method: outbound.method ?? 'GET',
      headers,
      ...(outbound.json === undefined ? {} : { body: JSON.stringify(outbound.json) }),
      signal,
      dispatcher: watchingWrites(outboundPool(outbound), written),
    });
    const response = await Promise.race([sending, unwrittenAtTimeout(signal, written)]);
    status = response.statusCode;
    encoding = contentEncoding(response.headers['content-encoding']);
    retryAfter = [response.headers['retry-after']].flat()[0];
    bytes = await readBytes(response.headers['content-length'], response.body, limit);
  } catch (error) {
    if (outbound.signal?.aborted) throw outbound.signal.reason;
    if (error === NEVER_WRITTEN) return { kind: 'unreachable', problem: CONNECT_TIMEOUT };
    if (signal.aborted) return { kind: 'timeout' };
    return { kind: 'unreachable', problem: redactSecrets(networkProblem(error), secrets) };
  }
  const decoded = bytes && (await decodedBytes(bytes, encoding, limit));
  const durationMs = Math.round(performance.now() - startedAt);
  if (decoded === null) return { kind: 'too_large', status, limit, durationMs };

  const ok = status >= 200 && status < 300;
  const notJson = {
    kind: 'answered',
    status,
    ok,
    isJson: false,
    body: undefined,
    durationMs,
    ...(retryAfter === undefined ? {} : { retryAfter }),
  } as const;
  if (!Buffer.isBuffer(decoded)) return { ...notJson, ...decoded };
  const maxValues = outbound.maxJsonValues ?? DEFAULT_MAX_JSON_VALUES;
  if (holdsMoreJsonValues(decoded, maxValues)) {
    return { kind: 'too_many_values', status, limit: maxValues, durationMs };
  }
  try {
    // As Response.text() decodes: UTF-8, a leading byte-order mark dropped.
    const text = new TextDecoder().decode(decoded);
    return { ...notJson, isJson: true, body: JSON.parse(text) };
  } catch {
    return notJson;
  }
}

/**
 * NOT SENT IN TIME: undici keeps a request whose signal fires before its connection is made until
 * that connection is made or fails (its own connect timeout, 10 s, whatever `timeoutMs` says), then
 * drops it unwritten; only then did the call end, and as a timeout, as if the request might have
 * been sent (an app service whose listener never accepts: a 10 s wait, and a task failed that it
 * never received). So a call whose time is up before its request was written ends then, as a
 * connection never made: `CONNECT_TIMEOUT`, the name undici gives its own connect timeout. Written
 * or not is known from the dispatch: undici starts a request (`onRequestStart`) on its connected
 * socket just before it writes it, and never writes one whose signal fired before that.
 */
export const CONNECT_TIMEOUT = 'UND_ERR_CONNECT_TIMEOUT';

/** What the timeout's race rejects with when the request was never written (see NOT SENT IN TIME). */
const NEVER_WRITTEN = Symbol('never written');

/** Rejects with NEVER_WRITTEN if `signal` fires before the request is written; else never settles. */
function unwrittenAtTimeout(signal: AbortSignal, written: { yet: boolean }): Promise<never> {
  return new Promise((_, reject) => {
    signal.addEventListener('abort', () => written.yet || reject(NEVER_WRITTEN), { once: true });
  });
}

/** `dispatcher`, noting in `written` when a request of this call is about to be written on its socket. */
function watchingWrites(dispatcher: Dispatcher, written: { yet: boolean }): Dispatcher {
  return dispatcher.compose((dispatch) => (options, handler) => dispatch(options, new WriteWatch(handler, written)));
}

/** A dispatch handler passing everything on, having noted the request's start (see NOT SENT IN TIME). */
class WriteWatch implements Dispatcher.DispatchHandler {
  readonly #handler: Dispatcher.DispatchHandler;
  readonly #written: { yet: boolean };
  constructor(handler: Dispatcher.DispatchHandler, written: { yet: boolean }) {
    this.#handler = handler;
    this.#written = written;
  }
  onRequestStart(controller: Dispatcher.DispatchController, context: unknown): void {
    this.#written.yet = true;
    this.#handler.onRequestStart?.(controller, context);
  }
  onRequestUpgrade(...args: Parameters<NonNullable<Dispatcher.DispatchHandler['onRequestUpgrade']>>): void {
    this.#handler.onRequestUpgrade?.(...args);
  }
  onResponseStart(...args: Parameters<NonNullable<Dispatcher.DispatchHandler['onResponseStart']>>): void {
    this.#handler.onResponseStart?.(...args);
  }
  onResponseData(...args: Parameters<NonNullable<Dispatcher.DispatchHandler['onResponseData']>>): void {
    this.#handler.onResponseData?.(...args);
  }
  onResponseEnd(...args: Parameters<NonNullable<Dispatcher.DispatchHandler['onResponseEnd']>>): void {
    this.#handler.onResponseEnd?.(...args);
  }
  onResponseError(...args: Parameters<NonNullable<Dispatcher.DispatchHandler['onResponseError']>>): void {
    this.#handler.onResponseError?.(...args);
  }
}

/** The body, or null once it exceeds `limit` bytes (the client itself has no such bound). */
async function readBytes(
  contentLength: string | string[] | undefined,
  body: Dispatcher.ResponseData['body'],
  limit: number,
): Promise<Buffer | null> {
  if (Number(contentLength ?? 0) > limit) {
    body.destroy();
    return null;
  }
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of body) {
    size += (chunk as Buffer).byteLength;
    if (size > limit) {
      // Destroying the stream closes the connection: the rest is never read.
      body.destroy();
      return null;
    }
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks, size);
}

/**
 * The decoders of the compressions an upstream may apply although we ask for none (undici's
 * `request`, unlike fetch, does not decode): read as "not JSON", such an answer failed with no
 * word of why. `deflate` is zlib-wrapped as the standard says, or raw as some servers send it
 * (browsers take both). Stacked codings (`gzip, br`) are not decoded: the answer says so.
 */
const inflateWrapped = promisify(inflate);
const inflateBare = promisify(inflateRaw);
const DECODERS: Record<string, (bytes: Buffer, options: ZlibOptions) => Promise<Buffer>> = {
  gzip: promisify(gunzip),
  'x-gzip': promisify(gunzip),
  deflate: (bytes, options) =>
    inflateWrapped(bytes, options).catch((error: NodeJS.ErrnoException) => {
      if (error.code === 'ERR_BUFFER_TOO_LARGE') throw error;
      return inflateBare(bytes, options);
    }),
  br: promisify(brotliDecompress),
};

/** The answer's content coding, lower case; undefined for none (or `identity`). */
function contentEncoding(header: string | string[] | undefined): string | undefined {
  const encoding = (Array.isArray(header) ? header.join(', ') : (header ?? '')).trim().toLowerCase();
  return encoding === '' || encoding === 'identity' ? undefined : encoding;
}

/**
 * The body after its content coding; null when the decoded body exceeds `limit` bytes, as a plain
 * one would (a small compressed answer may stand for gigabytes: decompression stops at the limit);
 * for a coding not read, or a body that is not in its coding, the coding named.
 */
async function decodedBytes(
  bytes: Buffer,
  encoding: string | undefined,
  limit: number,
): Promise<Buffer | null | { undecoded: string }> {
  if (encoding === undefined) return bytes;
  const decode = DECODERS[encoding];
  if (!decode) return { undecoded: encoding };
  try {
    return await decode(bytes, { maxOutputLength: limit });
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ERR_BUFFER_TOO_LARGE') return null;
    return { undecoded: encoding };
  }
}

/**
 * Upstream text fit for a message, a log line or a stored field: secrets redacted first, then cut
 * to `max`, so that a cut cannot leave behind a piece of a secret too short to be recognised.
 */
export function upstreamExcerpt(text: string, max: number, secrets?: readonly (string | null | undefined)[]): string {
  // Only a prefix is redacted (an answer may be megabytes, and redaction's cost grows with the
  // text: 1 MB takes up to ~0.2 s). Whatever the prefix's cut leaves of a secret ends up at the
  // redacted prefix's end: past `max` once that is longer; else a longer prefix is taken.
  for (let prefix = EXCERPT_INPUT_FACTOR * max + 256; ; prefix *= EXCERPT_INPUT_FACTOR) {
    const redacted = redactSecrets(text.slice(0, prefix), secrets);
    if (redacted.length > max || prefix >= text.length) return redacted.slice(0, max);
  }
}

/** How much more raw text than the excerpt is redacted first: redaction may shorten what it replaces. */
const EXCERPT_INPUT_FACTOR = 4;

/**
 * The reason a call got no answer (ECONNREFUSED, ENOTFOUND, a closed socket …), as undici names
 * it; a certificate refused in the TLS handshake says so in words too, and what to do about a
 * private CA: a bare UNABLE_TO_VERIFY_LEAF_SIGNATURE, shown as "unreachable", named neither.
 */
export function networkProblem(error: unknown): string {
  if (!(error instanceof Error)) return String(error);
  const { code, cause } = error as Error & { code?: string; cause?: Error & { code?: string } };
  const named = code ?? cause?.code;
  if (!named) return cause?.message ?? error.message;
  const tls = TLS_PROBLEMS[named] ?? (UNTRUSTED_CERTIFICATE.has(named) ? UNTRUSTED : undefined);
  return tls ? `${named}: ${tls}` : named;
}

const UNTRUSTED = 'its TLS certificate is not signed by a trusted CA (a private CA: NODE_EXTRA_CA_CERTS)';
const UNTRUSTED_CERTIFICATE = new Set([
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
]);
const TLS_PROBLEMS: Record<string, string> = {
  CERT_HAS_EXPIRED: 'its TLS certificate has expired',
  CERT_NOT_YET_VALID: 'its TLS certificate is not valid yet',
  ERR_TLS_CERT_ALTNAME_INVALID: 'its TLS certificate is not for this host name',
};

/** A `Retry-After` header in ms from `now`: delay-seconds or an HTTP date; null when absent or unreadable. */
export function retryAfterMs(header: string | undefined, now: number): number | null {
  const text = header?.trim() ?? '';
  if (/^\d+$/.test(text)) return Number(text) * 1000;
  const date = /[a-z]/i.test(text) ? Date.parse(text) : Number.NaN;
  return Number.isNaN(date) ? null : Math.max(0, date - now);
}
