/**
 * The one rule for an http(s) URL this server is given to call, by a setting (config-values.ts)
 * or by a client (a webhook's url, a market source's baseUrl). Each caller adds its own rule on
 * credentials and words the message with its field's name; the text of a URL is never quoted (it
 * may hold credentials or a token).
 */
export interface HttpUrlUse {
  /** false for a base URL: paths are appended to it, and a query string would swallow them. */
  query: boolean;
}

/** A URL's text starting `scheme://` and then something other than a slash or a backslash. */
const SCHEME_AND_HOST = /^[a-z][a-z0-9+.-]*:\/\/[^/\\]/i;

/**
 * Why `url` (parsed from `text`) cannot be called, or null. The URL parser also reads `http:/x`,
 * `http:x`, `http:\\x` and `http:///x` as http://x/: stored so, the typo became the host called
 * (a webhook's `http:/hooks` delivered to a host named "hooks"). Port 0 names no port a server
 * can listen on: every call to it failed, a webhook's deliveries retried to the end
 * (`http://127.0.0.1:0/` was stored). A fragment is never sent in an HTTP request: stored, the
 * URL shown did not say what was called.
 */
export function httpUrlProblem(url: URL, text: string, use: HttpUrlUse): string | null {
  if (url.protocol !== 'http:' && url.protocol !== 'https:') return 'must use http or https';
  if (!SCHEME_AND_HOST.test(text)) return 'must be an absolute URL (http:// or https://)';
  if (!url.hostname) return 'must name a host';
  if (url.port === '0') return 'must not name port 0 (nothing can be reached on it)';
  // The text as well as the parse: `http://host/?` and `http://host/#` parse to an empty one.
  if (!use.query && (url.search || text.includes('?'))) {
    return 'must not have a query string (paths are appended to it)';
  }
  if (url.hash || text.includes('#')) return 'must not have a fragment (it is never sent)';
  return null;
}
