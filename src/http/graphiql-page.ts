import { createHash } from 'node:crypto';
import { promisify } from 'node:util';
import { brotliCompress, constants, gzip } from 'node:zlib';
import type { GraphiQLOptions, Plugin } from 'graphql-yoga';
import Negotiator from 'negotiator';

const compressBrotli = promisify(brotliCompress);
const compressGzip = promisify(gzip);

/**
 * Brotli's quality 5 on GraphiQL's page (measured 2026-12-05): 9.05 MB → 1.95 MB in 0.5 s, where
 * quality 11 (zlib's default) gains 0.24 MB for 29 s of CPU. gzip at its default level: 2.44 MB
 * in 0.6 s. Both are made once, on zlib's threads, not on the event loop.
 */
const BROTLI_QUALITY = 5;

/** The forms the page is kept in, the smaller first. */
const ENCODINGS = ['br', 'gzip'] as const;

interface Page {
  /** The options it was rendered for: the page is made again if they ever differ. */
  key: string;
  html: string;
  /** Its Content-Security-Policy (pagePolicy). */
  policy: string;
  encoded: { br: Promise<Uint8Array<ArrayBuffer>>; gzip: Promise<Uint8Array<ArrayBuffer>> };
}

/**
 * GraphiQL's page is 9 MB: the whole editor inlined, which is what lets it work with no internet
 * access. Yoga renders it again for every request and sends it uncompressed (7 s over a 10 Mbit/s
 * link). Here it is rendered once and compressed once, and sent as brotli or gzip when the browser
 * accepts them (Accept-Encoding read by `negotiator`, as Express does): 1.95 MB.
 *
 * No ETag: browsers could not use it. GraphiQL posts its queries to the page's own URL, and a POST
 * evicts the URL's cached page (RFC 9111 §4.4), so Chromium asks for the whole page at every visit
 * (seen 2026-12-05 with a profile on disk; a 9 MB page that posts elsewhere was revalidated).
 */
export function graphiqlDelivery(render: (options?: GraphiQLOptions) => string): {
  render: (options?: GraphiQLOptions) => string;
  plugin: Plugin;
} {
  let page: Page | null = null;
  const prepared = (options?: GraphiQLOptions): Page => {
    const key = JSON.stringify(options ?? {});
    if (page?.key !== key) page = prepare(key, render(options));
    return page;
  };
  return {
    render: (options) => prepared(options).html,
    plugin: {
      // Not async: every other answer passes through without waiting for a promise.
      onResponse({ request, response, setResponse, fetchAPI }) {
        // Yoga's own GraphiQL answer (use-graphiql.ts), the only HTML it sends.
        if (!page || response.headers.get('content-type') !== 'text/html' || response.status !== 200) return;
        response.headers.set('content-security-policy', page.policy);
        const encoding = preferredEncoding(request.headers.get('accept-encoding'));
        // Every form of the page says it was chosen by Accept-Encoding, this one too: a shared
        // cache that stored it without would hand it to all, or the brotli one to all.
        const vary = withAcceptEncoding(response.headers.get('vary'));
        if (!encoding) {
          response.headers.set('vary', vary);
          return;
        }
        const headers = copiedHeaders(response.headers);
        headers.vary = vary;
        headers['content-encoding'] = encoding;
        return page.encoded[encoding].then((body) =>
          setResponse(new fetchAPI.Response(body, { status: 200, headers })),
        );
      },
    },
  };
}

function prepare(key: string, html: string): Page {
  const bytes = Buffer.from(html);
  const encoded = {
    br: compressBrotli(bytes, { params: { [constants.BROTLI_PARAM_QUALITY]: BROTLI_QUALITY } }).then(asBody),
    gzip: compressGzip(bytes).then(asBody),
  };
  // Awaited by the requests that want them; a failure reaches those requests, not the process.
  encoded.br.catch(() => {});
  encoded.gzip.catch(() => {});
  return { key, html, policy: pagePolicy(html), encoded };
}

/**
 * The page's Content-Security-Policy: its own inline scripts run (named by their SHA-256, computed
 * once with the page: ~20 ms for its 8 MB script), nothing else does, and it talks to its own
 * origin only (`'self'` covers the same host's ws: and wss:, for subscriptions). A script
 * injected into the page (a response shown as HTML by a future GraphiQL bug, an extension's
 * markup) cannot run or send what it read elsewhere. GraphiQL's editor starts its language
 * workers from blob: URLs, and its styles and icon are inline.
 */
export function pagePolicy(html: string): string {
  const hashes = [...html.matchAll(/<script(?![^>]*\ssrc=)[^>]*>([\s\S]*?)<\/script>/g)].map(
    ([, body]) =>
      `'sha256-${createHash('sha256')
        .update(body ?? '')
        .digest('base64')}'`,
  );
  return [
    "default-src 'self'",
    `script-src ${hashes.join(' ') || "'none'"}`,
    'worker-src blob:',
    "style-src 'self' 'unsafe-inline'",
    "img-src 'self' data: blob:",
    "font-src 'self' data:",
    "connect-src 'self'",
    "object-src 'none'",
    "base-uri 'none'",
    "form-action 'self'",
    "frame-ancestors 'none'",
  ].join('; ');
}

/**
 * The answer's headers but its length, with lower-case names. Not `new Headers(headers)`: the
 * Fetch ponyfill's copy keeps the names as Yoga wrote them (`Content-Type`), and then neither
 * finds nor deletes `content-type` (@whatwg-node/node-fetch 0.8), so later plugins would not see
 * an HTML page.
 */
function copiedHeaders(headers: Headers): Record<string, string> {
  const copy: Record<string, string> = {};
  headers.forEach((value, name) => {
    copy[name.toLowerCase()] = value;
  });
  delete copy['content-length'];
  return copy;
}

/** A Response body (a Buffer's memory may be shared with others, which the Fetch API's types refuse). */
function asBody(buffer: Buffer): Uint8Array<ArrayBuffer> {
  return new Uint8Array(buffer);
}

/**
 * negotiator 1 breaks a tie (browsers send `gzip, deflate, br, zstd`, all of quality 1) by the
 * server's preference, brotli here; its types (@types/negotiator 0.6) predate that argument.
 */
const preferredOf = Negotiator.prototype.encodings as (
  this: Negotiator,
  available: readonly string[],
  options: { preferred: readonly string[] },
) => string[];

/** The encoding the request prefers of those the page is kept in, or none (send it as is). */
function preferredEncoding(acceptEncoding: string | null): 'br' | 'gzip' | null {
  const accepted = new Negotiator({ headers: { 'accept-encoding': acceptEncoding ?? '' } });
  const [encoding] = preferredOf.call(accepted, ENCODINGS, { preferred: ENCODINGS });
  return encoding === 'br' || encoding === 'gzip' ? encoding : null;
}

/** A Vary header that names Accept-Encoding, once (the others it names kept). */
function withAcceptEncoding(vary: string | null): string {
  const names = (vary ?? '')
    .split(',')
    .map((name) => name.trim())
    .filter(Boolean);
  if (names.some((name) => name === '*' || name.toLowerCase() === 'accept-encoding')) return names.join(', ');
  return [...names, 'Accept-Encoding'].join(', ');
}
