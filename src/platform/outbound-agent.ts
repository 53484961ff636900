import { Agent, type Dispatcher, EnvHttpProxyAgent } from 'undici';
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
