import { isUtf8 } from 'node:buffer';
import type { IncomingMessage } from 'node:http';
import { mediaTypeOf } from './media-type.js';

/**
 * Requests are text in UTF-8 (JSON is UTF-8, RFC 8259 §8.1), and bytes that are not are refused,
 * not read: decoded leniently (Node's `toString('utf8')`, URLSearchParams), each bad byte became
 * U+FFFD and was stored, so `Café` sent in Latin-1 was kept as `Caf�`, silently, while a NUL or
 * a lone surrogate in the same field is refused as not valid Unicode. `isUtf8` is native (simdutf):
 * the check costs the lean path next to nothing.
 */

/** The answer to a JSON body whose bytes are not UTF-8 (400 BAD_REQUEST, as a body that is not JSON). */
export const NOT_UTF8_BODY =
  'POST body is not valid UTF-8: JSON must be encoded in UTF-8 (RFC 8259 §8.1); nothing was stored';

/** The answer to a query string whose percent-decoded bytes are not UTF-8 (400 BAD_REQUEST). */
export const NOT_UTF8_QUERY = 'The query string is not valid UTF-8 once percent-decoded (%XX must encode UTF-8 bytes)';

/**
 * Whether a request target's query string is UTF-8 once percent-decoded, as URLSearchParams will
 * read it (`%FF` would become U+FFFD). A malformed escape (`%zz`) stays literal, as it does there.
 */
export function isUtf8Query(url: string | undefined): boolean {
  const start = url?.indexOf('?') ?? -1;
  if (start === -1 || !url?.includes('%', start)) return true;
  // Each run of escapes is decoded apart: a character between two runs ends a sequence for URLSearchParams too.
  for (const [run] of url.slice(start + 1).matchAll(ESCAPE_RUNS)) {
    if (!isUtf8(Buffer.from(run.replaceAll('%', ''), 'hex'))) return false;
  }
  return true;
}

/** Consecutive percent escapes (`%C3%A9`). */
const ESCAPE_RUNS = /(?:%[0-9a-f]{2})+/gi;

/** `utf-8` as a charset parameter may name it: any case, quoted or not, and the common `utf8` alias. */
const UTF8_CHARSET = /^"?utf-?8"?$/i;

/**
 * Why a JSON POST must not be read, if it declares a charset other than UTF-8 (`charset=iso-8859-1`):
 * a 415, as other media types that are not accepted. The body would be read as UTF-8 anyway, so
 * the client's `é` in Latin-1 would not be the `é` it meant. No charset, or UTF-8, passes.
 */
export function refuseNonUtf8Charset(req: IncomingMessage): { status: number; code: string; message: string } | null {
  const contentType = req.headers['content-type'];
  if (req.method !== 'POST' || mediaTypeOf(contentType) !== 'application/json') return null;
  const charset = charsetOf(contentType as string);
  if (charset === undefined || UTF8_CHARSET.test(charset)) return null;
  return {
    status: 415,
    code: 'VALIDATION',
    message: `JSON bodies must be UTF-8 (RFC 8259 §8.1): charset=${charset.slice(0, 40).replace(/[^\w.:"-]/g, '?')} is not accepted`,
  };
}

/**
 * Why a POST body must not be read, if it declares a content coding (`Content-Encoding: gzip`):
 * bodies are read as sent, and a gzipped one was read as its compressed bytes (a chart upload's
 * multipart body: 400 "Unexpected end of multipart data"; a JSON body: 400 as not UTF-8). A 415
 * naming the coding (RFC 9110 §15.5.16), before anything is read; none, or `identity`, passes.
 */
export function refuseContentEncoding(req: IncomingMessage): { status: number; code: string; message: string } | null {
  const encoding = req.headers['content-encoding'];
  if (req.method !== 'POST' || encoding === undefined) return null;
  if (encoding.split(',').every((coding) => /^\s*(?:identity)?\s*$/i.test(coding))) return null;
  return {
    status: 415,
    code: 'VALIDATION',
    message: `Request bodies are read as sent: Content-Encoding ${encoding.slice(0, 40).replace(/[^\w.:, -]/g, '?')} is not accepted (send it uncompressed)`,
  };
}

/** The value of a Content-Type's `charset` parameter, as sent; undefined without one. */
function charsetOf(contentType: string): string | undefined {
  for (const parameter of contentType.split(';').slice(1)) {
    const equals = parameter.indexOf('=');
    if (equals !== -1 && parameter.slice(0, equals).trim().toLowerCase() === 'charset') {
      return parameter.slice(equals + 1).trim();
    }
  }
  return undefined;
}
