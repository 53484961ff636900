import type { IncomingMessage, ServerResponse } from 'node:http';
import { loggedText } from '../platform/clip-text.js';
import { mediaTypeOf } from './media-type.js';

/** Distinct Host values whose answer OriginPolicy keeps. */
const MAX_HOSTS_KEPT = 64;

/**
 * Which web pages may drive the API from a browser. A browser attaches the user's cookies (behind
 * a cookie-authenticating gateway) and, in local development mode, every request is the admin: so
 * a page of another site must not be able to send a mutation. Three rules together close that:
 * - only the server's own origin and the `CORS_ORIGINS` allow-list get CORS headers (Yoga's
 *   `cors` option) and may open a WebSocket (browsers always send `Origin` on an upgrade);
 * - a request whose `Origin` is present and not allowed is refused before it runs;
 * - a POST must be `application/json`, which a browser only sends cross-site after a CORS
 *   preflight; forms (`x-www-form-urlencoded`, `text/plain`) are refused, and so is
 *   `multipart/form-data` unless it carries UPLOAD_PREFLIGHT_HEADER (chart uploads), which a page
 *   can only add after a preflight too; mutations never run over GET (Yoga's rule for /graphql,
 *   the SSE transport's for its own).
 * Non-browser clients send no `Origin` and are unaffected. And a request the browser marks as made
 * by another site's page without an `Origin` (isOtherSitesSubrequest) is refused too.
 *
 * In local development mode (`loopbackHostsOnly`) a fourth: only requests to a loopback name
 * (`localhost`, `127.0.0.1`, `[::1]`) are served. Against DNS rebinding: a page of evil.example
 * whose name was made to resolve to 127.0.0.1 reaches this server with `Host: evil.example`, and
 * to the browser it is then the page's own origin, so the Origin rules alone let it through.
 */
export class OriginPolicy {
  constructor(
    private readonly allowList: readonly string[],
    private readonly options: { loopbackHostsOnly?: boolean } = {},
  ) {}

  /** The answers for the Host values seen, so that the same Host is not parsed on every request. */
  private readonly hosts = new Map<string | undefined, boolean>();

  /** Whether a request under the `host` header may be served at all (see `loopbackHostsOnly`). */
  allowsHost(host: string | null | undefined): boolean {
    if (!this.options.loopbackHostsOnly) return true;
    const key = host ?? undefined;
    let allowed = this.hosts.get(key);
    if (allowed === undefined) {
      allowed = isLoopbackHost(key);
      // Bounded: Host is the client's to choose. A handful of names reach a loopback-bound server.
      if (this.hosts.size < MAX_HOSTS_KEPT) this.hosts.set(key, allowed);
    }
    return allowed;
  }

  /** Whether a page at `origin` may call this server, reached under the `host` header. */
  allows(origin: string | null | undefined, host: string | null | undefined): boolean {
    if (!origin) return true;
    return this.allowList.includes(origin) || this.isSameOrigin(origin, host);
  }

  /** Whether a cross-origin page may read responses: only the allow-list gets CORS headers. */
  allowsCrossOrigin(origin: string): boolean {
    return this.allowList.includes(origin);
  }

  private isSameOrigin(origin: string, host: string | null | undefined): boolean {
    if (!host) return false;
    try {
      const url = new URL(origin);
      return (url.protocol === 'http:' || url.protocol === 'https:') && url.host === host;
    } catch {
      return false; // "null" (sandboxed frames, file://) and anything malformed
    }
  }
}

/**
 * The header a multipart POST (the GraphQL multipart request spec, for `uploadChart`) must carry.
 * A browser sends multipart cross-site without a preflight (an HTML form can), and behind a
 * cookie-authenticating gateway or in local development mode that request would run as the user.
 * Any header outside the CORS-safelisted ones makes the browser ask first, and the preflight
 * succeeds only for the allow-list. The name is graphql-yoga's CSRF-prevention convention (its
 * `useCSRFPrevention` plugin's default `requestHeaders`; Apollo Server's equivalent is
 * `Apollo-Require-Preflight`): clients of Yoga servers already know it. Its value is not read.
 */
export const UPLOAD_PREFLIGHT_HEADER = 'x-graphql-yoga-csrf';

/** Whether a request is a multipart POST that carries UPLOAD_PREFLIGHT_HEADER. */
export function isPreflightedUpload(req: IncomingMessage): boolean {
  const type = mediaTypeOf(req.headers['content-type']);
  return req.method === 'POST' && type === 'multipart/form-data' && Boolean(req.headers[UPLOAD_PREFLIGHT_HEADER]);
}

/** A refusal to answer with, before the request runs. */
export interface Refusal {
  status: number;
  code: string;
  message: string;
}

/**
 * `localhost` (and its subdomains, with or without the root's dot), 127.0.0.0/8, `[::1]` or 127.x
 * mapped into IPv6, with or without a port. No Host at all (HTTP/1.0) is no browser's request,
 * which always names the host it resolved, and so no rebinding: it passes.
 */
function isLoopbackHost(host: string | null | undefined): boolean {
  if (host === undefined || host === null) return true;
  const hostname = URL.parse(`http://${host}`)?.hostname.replace(/\.$/, '');
  if (!hostname) return false;
  return (
    hostname === 'localhost' ||
    hostname.endsWith('.localhost') ||
    hostname === '[::1]' ||
    /^127\.\d+\.\d+\.\d+$/.test(hostname) ||
    /^\[::ffff:7f[0-9a-f]{2}:[0-9a-f]{1,4}\]$/.test(hostname)
  );
}

/**
 * Whether a browser marks the request as made by a page of another site without an Origin: a
 * no-cors request (an <img>, a <script>, a no-cors fetch) or a navigation in a frame (Fetch
 * Metadata; CORS requests carry an Origin, which the allow-list judges). No client of the API
 * sends one, yet each would run as the browser's user: a page framing `/graphql/stream` 50 times
 * held every stream slot of its visitor. Only following a link to GraphiQL (a top-level page) is
 * such a request to let through.
 */
function isOtherSitesSubrequest(req: IncomingMessage): boolean {
  const site = req.headers['sec-fetch-site'];
  if (req.headers.origin || (site !== 'cross-site' && site !== 'same-site')) return false;
  const followedLink = req.headers['sec-fetch-mode'] === 'navigate' && req.headers['sec-fetch-dest'] === 'document';
  const toStream = req.url?.split('?')[0] === '/graphql/stream';
  return !followedLink || toStream;
}

/**
 * Why a request to any path must not be served, if it must not: in local development mode only
 * loopback Host names are (against DNS rebinding: a page of another name resolved to 127.0.0.1 is
 * of its own origin, so the browser lets it read what the server answers, `/metrics` included).
 */
export function refuseForeignHost(req: IncomingMessage, policy: OriginPolicy): Refusal | null {
  const { host } = req.headers;
  if (policy.allowsHost(host)) return null;
  return {
    status: 403,
    code: 'FORBIDDEN',
    message: `Host ${loggedText(host ?? '', 200)} is not a loopback name: local development mode serves localhost, 127.0.0.1 and [::1] only`,
  };
}

/** Why a request to a GraphQL endpoint must not run, if it must not (its Host checked before: refuseForeignHost). */
export function refuseCrossSite(req: IncomingMessage, policy: OriginPolicy): Refusal | null {
  const { origin, host } = req.headers;
  if (!policy.allows(origin, host)) {
    return { status: 403, code: 'FORBIDDEN', message: originRefusal(origin as string, host) };
  }
  if (isOtherSitesSubrequest(req)) {
    return {
      status: 403,
      code: 'FORBIDDEN',
      message: `A request another site's page made without an Origin (Sec-Fetch-Site: ${req.headers['sec-fetch-site']}) is not served`,
    };
  }
  if (req.method === 'POST' && !isJson(req.headers['content-type']) && !isPreflightedUpload(req)) {
    return {
      status: 415,
      code: 'VALIDATION',
      message: `POST bodies must be application/json, or multipart/form-data (uploads) with the ${UPLOAD_PREFLIGHT_HEADER} header; forms are not accepted`,
    };
  }
  return null;
}

/** Characters of a header value `shown` keeps: those of an origin or a host name with its port. */
const SHOWN = /[^\w.:/[\]-]/g;
/** Characters of a header value `shown` keeps at most. */
const MAX_SHOWN = 200;

/**
 * A header value for a message or a log line: client input, so bounded and cut down to the
 * characters of an origin (a WebSocket refusal's message is the body of a text/html answer).
 */
export function shown(value: string | null | undefined): string {
  if (value === undefined || value === null) return '(none)';
  const kept = value.slice(0, MAX_SHOWN).replace(SHOWN, '?');
  return value.length > MAX_SHOWN ? `${kept}…` : kept;
}

/**
 * Why a page at `origin` may not call this server, reached under the `host` header. A page of the
 * server's own origin is refused too when a proxy in front rewrites Host (nginx does by default,
 * to the upstream's address): the message names both, so that an operator sees that case, which
 * "not in CORS_ORIGINS" alone sent them to the wrong setting for.
 */
export function originRefusal(origin: string, host: string | null | undefined): string {
  const url = URL.parse(origin);
  if (url?.protocol !== 'http:' && url?.protocol !== 'https:')
    return `Origin ${shown(origin)} is not allowed (CORS_ORIGINS)`;
  return (
    `Origin ${shown(origin)} does not match the Host the server was reached under (${shown(host)}) and is not in ` +
    'CORS_ORIGINS: a proxy in front must pass the Host header unchanged (nginx: proxy_set_header Host $http_host); ' +
    'if the page is of another site, list its origin in CORS_ORIGINS'
  );
}

/**
 * A request body in JSON. Only `application/json`: `application/graphql-response+json` is the
 * media type of answers (GraphQL over HTTP), which Yoga's parsers refuse with a bare 415.
 */
function isJson(contentType: string | undefined): boolean {
  return mediaTypeOf(contentType) === 'application/json';
}

/**
 * The CORS headers of an answer this server writes itself (the SSE transports: Yoga adds them to
 * its own from the same policy, see app/graphql.ts): an allowed origin's page may read it. Without
 * them such a page could not read a stream, and graphql-sse's client took that for a network
 * error and sent the operation again, five times (a mutation ran six times).
 */
export function allowCrossOriginRead(req: IncomingMessage, res: ServerResponse, policy: OriginPolicy): void {
  res.setHeader('vary', 'Origin');
  const { origin } = req.headers;
  if (!origin || !policy.allowsCrossOrigin(origin)) return;
  res.setHeader('access-control-allow-origin', origin);
  res.setHeader('access-control-allow-credentials', 'true');
  res.setHeader('access-control-expose-headers', EXPOSED_HEADERS.join(', '));
}

/**
 * Response headers an allowed origin's page may read besides the CORS-safelisted ones: the
 * request id (what a frontend hands to support, the only trace of a masked "Unexpected error.")
 * and a refusal's Retry-After. Without the list, `response.headers.get(…)` returns null for them.
 */
export const EXPOSED_HEADERS = ['x-request-id', 'retry-after'];
