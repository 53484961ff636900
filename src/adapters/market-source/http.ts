import { setTimeout } from 'node:timers/promises';
import { isRecord } from '../../platform/json.js';
import { fetchJson, type OutboundOutcome, upstreamExcerpt } from '../../platform/outbound-http.js';
import { redactSecrets } from '../../platform/redact.js';
import { type Call, garbage, readDetails, readHash, readInfo } from './answers.js';
import {
  MAX_DETAIL_BATCH,
  type MarketSourceClient,
  MarketSourceError,
  type SourceDetails,
  type SourceHash,
  type SourceIndex,
} from './port.js';

/** Detail batches in flight at once: a big first sync is quick, and a source is not flooded. */
const DETAIL_CONCURRENCY = 4;
/**
 * A market source over HTTP, as Olares clients speak to one (the official catalogue,
 * third-party ones such as Cloudflare workers or static hosting):
 *
 * - `GET  {base}/api/v2/appstore/hash?version=V`  → `{ hash, last_updated, version }`
 * - `GET  {base}/api/v2/appstore/info?version=V`  → `{ version, hash, last_updated, data: { apps, … }, stats }`
 * - `POST {base}/api/v2/applications/info` with `{ app_ids, version }` → `{ apps, version, not_found? }`
 *
 * Newer Olares clients ask under `/api/v2/` and fall back to `/api/v1/` on a 404; so does this
 * one, and once a source has answered under v1 it is asked there first; a 404 there has it asked
 * under v2 again (a v2 source that answered one 404 during a deploy is not lost to v1 for good).
 * Every call is bounded in time and size (fetchJson), every answer is shape
 * checked, and every failure is a MarketSourceError whose message carries no credential.
 */

export interface HttpMarketSourceOptions {
  /** Where the source lives, e.g. `https://appstore-server-prod.bttcdn.com`; may carry `user:password@`. */
  baseUrl: string;
  /** The Olares version sent as `version=` (and in the details body): sources filter by it. @default '1.12.0' */
  version?: string;
  /** Per call, reading the answer included. @default 10000 */
  timeoutMs?: number;
  /** Largest answer read; the index of a big catalogue is a few MB. @default 16 MiB */
  maxResponseBytes?: number;
  /** Told of each call asked again after its connection failed (see RETRIED_PROBLEMS), for the log. */
  onRetry?: (retry: MarketSourceRetry) => void;
}

export interface MarketSourceRetry {
  call: Exclude<Call, 'bundled catalogue'>;
  /** The attempt that failed (1 for the first). */
  attempt: number;
  /** How its connection failed (ECONNRESET, UND_ERR_SOCKET …). */
  problem: string;
}

export const DEFAULT_OLARES_VERSION = '1.12.0';
export const DEFAULT_TIMEOUT_MS = 10_000;
export const DEFAULT_MAX_RESPONSE_BYTES = 16 * 1024 * 1024;
/**
 * Largest hash answer read, whatever maxResponseBytes allows. The answer is `{ hash, last_updated,
 * version }`, about 120 bytes, and it is polled at every interval: under the catalogue-sized
 * bound, a source answering the poll with 32 MiB of tiny JSON values froze the process at each
 * poll. 16 KiB, rather than a few hundred bytes, still reads a proxy's HTML error page (a
 * Cloudflare one is 5–7 kB) as the HTTP status it is.
 */
export const MAX_HASH_RESPONSE_BYTES = 16 * 1024;

/**
 * Connection-level failures after which a call is asked again: a connection reset or closed
 * under it (a flaky link, a proxy dropping one connection, a keep-alive connection the source
 * closed as it was reused). Every call is a read (the details' POST included), so asking again is
 * safe; without it, one dropped connection among the detail batches of a big first sync failed
 * the whole sync, and a flaky link never finished one. Not asked again: a timeout, an HTTP error
 * or a wrong answer (the source's answer), nor a refused connection (nothing listens there: the
 * next scheduled sync tries again, and a source that is down fails at once, not 0.6 s later).
 */
const RETRIED_PROBLEMS = new Set(['ECONNRESET', 'EPIPE', 'UND_ERR_SOCKET']);
/** Attempts of one call at most, the first included. */
const MAX_CALL_ATTEMPTS = 3;
/** The wait before the second attempt, doubled before each later one. */
const RETRY_DELAY_MS = 200;

/** Enough of an upstream's own words to explain a failure, not enough to fill a status field. */
const MAX_UPSTREAM_MESSAGE = 200;

const PATHS: Record<Exclude<Call, 'bundled catalogue'>, string> = {
  hash: 'appstore/hash',
  info: 'appstore/info',
  details: 'applications/info',
};

type ApiVersion = 'v2' | 'v1';

interface Request {
  method: 'GET' | 'POST';
  query?: string;
  json?: unknown;
}

export class HttpMarketSource implements MarketSourceClient {
  readonly describe: string;
  private readonly root: string;
  private readonly version: string;
  private readonly timeoutMs: number;
  private readonly maxResponseBytes: number;
  private readonly onRetry: (retry: MarketSourceRetry) => void;
  private readonly headers: Record<string, string> = { accept: 'application/json' };
  private readonly secrets: string[] = [];
  private api: ApiVersion = 'v2';

  /** Throws MarketSourceError('unreachable') for a base URL that is not http(s). */
  constructor(options: HttpMarketSourceOptions) {
    let url: URL;
    try {
      url = new URL(options.baseUrl);
    } catch {
      throw new MarketSourceError('unreachable', 'the base URL is not a valid URL');
    }
    if (url.protocol !== 'http:' && url.protocol !== 'https:') {
      throw new MarketSourceError('unreachable', 'unsupported URL scheme');
    }
    // fetch refuses a URL with credentials (and would quote it whole in its error): they travel
    // as Basic authentication instead, and are known secrets from here on.
    if (url.username || url.password) {
      let username: string;
      let password: string;
      try {
        username = decodeURIComponent(url.username);
        password = decodeURIComponent(url.password);
      } catch {
        // A URIError (a `%` not followed by two hex digits): its message would quote the credentials.
        throw new MarketSourceError('unreachable', 'the base URL has malformed credentials');
      }
      const token = Buffer.from(`${username}:${password}`).toString('base64');
      this.headers.authorization = `Basic ${token}`;
      this.secrets.push(password, token);
    }
    url.username = '';
    url.password = '';
    url.search = '';
    url.hash = '';
    this.root = url.href.replace(/\/+$/, '');
    this.describe = this.root;
    this.version = options.version ?? DEFAULT_OLARES_VERSION;
    this.timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    this.maxResponseBytes = options.maxResponseBytes ?? DEFAULT_MAX_RESPONSE_BYTES;
    this.onRetry = options.onRetry ?? (() => {});
  }

  /** The API version this client asks under now: `v2` until the source answered 404 there. */
  get apiVersion(): ApiVersion {
    return this.api;
  }

  async hash(signal?: AbortSignal): Promise<SourceHash> {
    return readHash(await this.call('hash', { method: 'GET', query: this.versionQuery() }, signal));
  }

  async index(signal?: AbortSignal): Promise<SourceIndex> {
    return readInfo(await this.call('info', { method: 'GET', query: this.versionQuery() }, signal));
  }

  /** In batches of MAX_DETAIL_BATCH ids, DETAIL_CONCURRENCY batches in flight at once. */
  async detailsEach(
    appIds: readonly string[],
    each: (answer: SourceDetails) => void | Promise<void>,
    signal?: AbortSignal,
  ): Promise<void> {
    const ids = [...new Set(appIds)];
    const batches: string[][] = [];
    for (let start = 0; start < ids.length; start += MAX_DETAIL_BATCH) {
      batches.push(ids.slice(start, start + MAX_DETAIL_BATCH));
    }
    let next = 0;
    let failed = false;
    const worker = async () => {
      while (next < batches.length && !failed) {
        const batch = batches[next++] as string[];
        try {
          const json = { app_ids: batch, version: this.version };
          const body = await this.call('details', { method: 'POST', json }, signal);
          await each(readDetails(body, batch));
        } catch (error) {
          // The sync fails with the first error: the batches not yet asked for are not.
          failed = true;
          throw error;
        }
      }
    };
    await Promise.all(Array.from({ length: Math.min(DETAIL_CONCURRENCY, batches.length) }, worker));
  }

  private versionQuery(): string {
    return `version=${encodeURIComponent(this.version)}`;
  }

  /** The JSON body of a 200 answer, under v2 or (after a 404 there) v1; any other outcome throws. */
  private async call(
    call: Exclude<Call, 'bundled catalogue'>,
    request: Request,
    signal: AbortSignal | undefined,
  ): Promise<unknown> {
    let api = this.api;
    let outcome = await this.send(api, call, request, signal);
    if (outcome.kind === 'answered' && outcome.status === 404) {
      // Under the other version: v1 for a source that speaks only v1; v2 again for one asked under
      // v1 since a passing 404 under v2 (a deploy), which would otherwise fail for good. Only an
      // answer there switches; concurrent calls may both find out, and come to the same conclusion.
      const other: ApiVersion = api === 'v2' ? 'v1' : 'v2';
      const there = await this.send(other, call, request, signal);
      if (there.kind !== 'answered' || there.status !== 404) {
        this.api = other;
        api = other;
        outcome = there;
      }
    }
    return this.bodyOf(call, `/api/${api}/${PATHS[call]}`, outcome);
  }

  /** One call, asked again (at most MAX_CALL_ATTEMPTS in all) while its connection fails. */
  private async send(
    api: ApiVersion,
    call: Exclude<Call, 'bundled catalogue'>,
    request: Request,
    signal: AbortSignal | undefined,
  ): Promise<OutboundOutcome> {
    for (let attempt = 1; ; attempt++) {
      const outcome = await this.sendOnce(api, call, request, signal);
      if (outcome.kind !== 'unreachable' || !RETRIED_PROBLEMS.has(outcome.problem)) return outcome;
      if (attempt >= MAX_CALL_ATTEMPTS) return { ...outcome, problem: `${outcome.problem}, ${attempt} attempts` };
      this.onRetry({ call, attempt, problem: outcome.problem });
      await setTimeout(RETRY_DELAY_MS * 2 ** (attempt - 1), undefined, signal ? { signal } : {});
    }
  }

  private sendOnce(
    api: ApiVersion,
    call: Exclude<Call, 'bundled catalogue'>,
    request: Request,
    signal: AbortSignal | undefined,
  ): Promise<OutboundOutcome> {
    return fetchJson({
      url: `${this.root}/api/${api}/${PATHS[call]}${request.query ? `?${request.query}` : ''}`,
      method: request.method,
      headers: this.headers,
      ...(request.json === undefined ? {} : { json: request.json }),
      timeoutMs: this.timeoutMs,
      maxResponseBytes:
        call === 'hash' ? Math.min(MAX_HASH_RESPONSE_BYTES, this.maxResponseBytes) : this.maxResponseBytes,
      // Never followed. A redirect would carry the credential elsewhere; a 301 or 302 turns the
      // details' POST into a GET without its body; and a followed read with unfollowed details
      // mixed two hosts' catalogues in one sync that said it succeeded (one host's index, the
      // other's entries). The admin gives the new URL (bodyOf names the redirect).
      followRedirects: false,
      secrets: this.secrets,
      ...(signal ? { signal } : {}),
    });
  }

  private bodyOf(call: Call, path: string, outcome: OutboundOutcome): unknown {
    const fail = (reason: MarketSourceError['reason'], message: string) =>
      new MarketSourceError(reason, redactSecrets(`${call}: ${message}`, this.secrets));
    switch (outcome.kind) {
      case 'timeout':
        throw fail('timeout', `no answer within ${this.timeoutMs} ms`);
      case 'unreachable':
        throw fail('unreachable', `${this.describe} is unreachable (${outcome.problem})`);
      case 'too_large':
        throw fail('too_large', `the answer is larger than ${outcome.limit} bytes`);
      case 'too_many_values':
        throw fail('too_large', `the answer has more than ${outcome.limit} JSON values`);
      case 'answered':
        break;
    }
    const said = outcome.isJson ? upstreamMessage(outcome.body, this.secrets) : '';
    if (outcome.status === 202) {
      // What the official source answers while it is still loading a version's catalogue.
      throw fail('status', `HTTP 202 from ${path}: the source is still loading${said ? ` (${said})` : ''}`);
    }
    if (outcome.status >= 300 && outcome.status < 400) {
      // Only 301, 302 and 303 turn a POST into a GET; a 307 or 308 keeps it, body and all.
      const why =
        this.secrets.length > 0
          ? 'not followed since it would carry the credentials'
          : call === 'details' && outcome.status >= 301 && outcome.status <= 303
            ? 'not followed since the POST would arrive as a GET without its body'
            : 'not followed since the index and its details must come from the same place';
      throw fail('status', `HTTP ${outcome.status} from ${path}: a redirect ${why}; give the source's new URL instead`);
    }
    if (outcome.status !== 200) throw fail('status', `HTTP ${outcome.status} from ${path}${said ? `: ${said}` : ''}`);
    if (outcome.undecoded) {
      throw garbage(call, `the answer is compressed (content-encoding: ${outcome.undecoded}) and could not be decoded`);
    }
    if (!outcome.isJson) throw garbage(call, 'the answer is not JSON');
    return unwrapEnvelope(call, outcome.body, this.secrets);
  }
}

/**
 * The newer v2 endpoints of some sources wrap their answers as `{ code, msg, data }` (code 0 is
 * success); the protocol's own answers never have a numeric `code` beside `data` without `hash`
 * or `apps`, so such a wrapper is recognised and opened.
 */
function unwrapEnvelope(call: Call, body: unknown, secrets: readonly string[]): unknown {
  if (!isRecord(body) || typeof body.code !== 'number' || !('data' in body) || 'hash' in body || 'apps' in body) {
    return body;
  }
  if (body.code !== 0) {
    const said = upstreamMessage(body, secrets);
    throw new MarketSourceError(
      'status',
      redactSecrets(`${call}: the source refused with code ${body.code}${said ? `: ${said}` : ''}`, secrets),
    );
  }
  return body.data;
}

/** The upstream's own explanation (`message`, `msg` or `error`), first line, redacted and cut. */
function upstreamMessage(body: unknown, secrets: readonly string[]): string {
  if (!isRecord(body)) return '';
  const text = [body.message, body.msg, body.error].find((value) => typeof value === 'string') as string | undefined;
  if (!text) return '';
  return upstreamExcerpt(
    (text.trim().split('\n', 1)[0] ?? '').slice(0, 4 * MAX_UPSTREAM_MESSAGE),
    MAX_UPSTREAM_MESSAGE,
    secrets,
  );
}
