import { Agent, type Dispatcher, EnvHttpProxyAgent, interceptors } from 'undici';
import { keepSecret } from './redact.js';

/**
 * The connection pool of an outbound HTTP client (outbound-http.ts: market sources, developer
 * credential services, the chart repo, the app service; outbox-delivery.ts: webhooks and payment
 * pushes), through the proxy the standard variables name. A private undici Agent reads none of
 * them (Node's NODE_USE_ENV_PROXY only sets its global dispatcher), so where a proxy is the only
 * way out every call failed as ENOTFOUND or UND_ERR_CONNECT_TIMEOUT. Redis and PostgreSQL are not
 * HTTP and never go through here.
 *
 * Read as undici's EnvHttpProxyAgent reads them, at the pool's creation: `http_proxy` before
 * `HTTP_PROXY` for http:// targets, `https_proxy` before `HTTPS_PROXY` for https:// ones (falling
 * back to the HTTP proxy), and `no_proxy`/`NO_PROXY` (names, `.suffix`, `host:port`, `*`) for the
 * hosts reached directly. config.ts refuses a proxy value that is not an http(s) URL before any
 * pool is made. With none set the pool is the plain Agent, as before, with the same options.
 *
 * Through a proxy, http:// targets are sent to it in absolute form and https:// ones through a
 * CONNECT tunnel (TLS still ends at the target), as curl does: undici's default, a tunnel for
 * plain HTTP too, is refused by proxies that allow CONNECT only to port 443 (Squid's default).
 * The proxy then resolves the target's name and opens the connection: which addresses a call can
 * reach is the proxy's policy (this server puts no bound on addresses of its own; private ones are
 * allowed on purpose), and a loopback or in-cluster target must be listed in NO_PROXY to be
 * reached directly.
 *
 * A proxy URL's credentials (`http://user:password@proxy:3128`) are secrets the redactor knows
 * from then on (rememberProxyCredentials).
 */
export function outboundAgent(options: Agent.Options = {}): Dispatcher {
  if (!PROXY_VARIABLES.some((name) => process.env[name])) return new Agent(options);
  rememberProxyCredentials();
  // A proxy's pool has undici's own connect step (to the proxy, then CONNECT), not `connect`'s:
  // its timeout is given to the connection to the proxy and to the TLS handshake through it.
  const timeout = typeof options.connect === 'object' ? options.connect?.timeout : undefined;
  const tls = timeout === undefined || timeout === null ? {} : { proxyTls: { timeout }, requestTls: { timeout } };
  return new EnvHttpProxyAgent({ ...options, ...tls, proxyTunnel: false });
}

/** What a call of outbound-http.ts asks of its pool (OutboundRequest's fields of the same names). */
interface PoolChoice {
  followRedirects?: boolean | undefined;
  reuseConnection?: boolean | undefined;
}

/**
 * The HTTP client of every outbound call: undici's `request` (the library Node's own fetch is
 * built on) with a keep-alive pool, rather than fetch itself, whose Fetch-API objects (Request,
 * Headers, Response, a web stream per body) cost more than the call: measured against a local
 * source, 0.75–1.05 ms of CPU per small JSON answer with fetch, 0.10–0.15 ms with `request`
 * (after warm-up; an unchanged-hash catalogue sync is one such call).
 *
 * One pool per choice: kept-alive connections, or (`reuseConnection: false`) connections that each
 * carry one request and close (`pipelining: 0`), each following redirects (at most 5) or not.
 * Made at the first call rather than at import: by then loadConfig has checked the proxy
 * variables outboundAgent reads, which a bad one would otherwise end the import on.
 */
const pools = new Map<string, Dispatcher>();

/**
 * A CONNECTION OF ITS OWN: a server closes a kept-alive connection once it has been idle for its
 * own idle timeout (Go's net/http, nginx's keepalive_timeout, a proxy's), mostly without the
 * `Keep-Alive: timeout=` hint undici would honour (and undici's own 4 s is above many such
 * timeouts). A request written while that close is on its way to us reaches a connection already
 * closed: undici reports ECONNRESET or "other side closed", and we cannot tell that from a server
 * that read the request, started on it and then broke. Go's Transport cannot either: it sends a
 * POST again only when not one byte of it was written (`nothingWrittenError`), never after a
 * closed idle connection (`errServerClosedIdle` is retried for idempotent requests only). Since
 * undici 7's check of an idle socket before writing on it, the window is about the close's time
 * in transit. Measured (2026-12-08, 2-core machine, Node 20, undici 7.30; a node:http app service
 * closing connections idle for 1.3 s, no hint, behind a TCP proxy adding 0, 10 or 30 ms to its
 * answers and close; 200 POSTs each sent 1.3 s ± 25 ms after the answer before): 16, 49 and 88 of
 * 200 failed on a kept-alive connection, 0 of 200 each on a connection of their own. A shorter
 * pool timeout of ours only moves the race below the server's, which we do not know (and cannot
 * learn when it sends no hint); a request that must not be sent twice instead goes on a new
 * connection, which no server closes as idle before reading it. That costs a connect (and a TLS
 * handshake) per such request: 0.4–0.5 ms more per POST on loopback (medians of 1,000, 0.59–0.74
 * ms vs 0.15–0.31 ms), nothing next to an operation. Every other call keeps the kept-alive pool.
 */
export function outboundPool({ followRedirects = false, reuseConnection = true }: PoolChoice): Dispatcher {
  const key = `${reuseConnection} ${followRedirects}`;
  let pool = pools.get(key);
  if (!pool) {
    pool = followRedirects
      ? outboundPool({ reuseConnection }).compose(interceptors.redirect({ maxRedirections: 5 }))
      : outboundAgent(reuseConnection ? {} : { pipelining: 0 });
    pools.set(key, pool);
  }
  return pool;
}

/** The variables that make a call go through a proxy (NO_PROXY alone changes nothing). */
const PROXY_VARIABLES = ['http_proxy', 'HTTP_PROXY', 'https_proxy', 'HTTPS_PROXY'];

/**
 * Puts the credentials in the proxy variables on the process's list of secrets redacted from what
 * comes back from outside (platform/redact.ts), for good: they are sent with every call through
 * the proxy, but remembered only here. A proxy refusing a call may quote what it was given
 * in its answer, which a sync's or a delivery's lastError and the log show. The password, the
 * `user:password` undici sends and that as the Proxy-Authorization carries it (base64), decoded as
 * undici decodes them.
 */
function rememberProxyCredentials(): void {
  for (const name of PROXY_VARIABLES) {
    const url = URL.parse(process.env[name] ?? '');
    if (!url || (!url.username && !url.password)) continue;
    const userinfo = `${decoded(url.username)}:${decoded(url.password)}`;
    keepSecret(decoded(url.password), url.password, userinfo, Buffer.from(userinfo).toString('base64'));
  }
}

/** A URL's percent-encoded part as text; as written when it does not decode. */
function decoded(part: string): string {
  try {
    return decodeURIComponent(part);
  } catch {
    return part;
  }
}
