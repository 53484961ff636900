/**
 * A request's media type: every check of a request's Content-Type goes through here. Media types
 * are case-insensitive (RFC 9110 §8.3.1): `Application/JSON; charset=UTF-8` is JSON to the
 * cross-site rule, the lean path, the SSE transports and Yoga alike, and `Text/Plain` is a form's
 * `text/plain`, which the cross-site rule refuses. (Not the `content-type` package: only a
 * dependency of negotiator, and all that is needed of the header is its `type/subtype`.) Below,
 * the JSON type an answer is written in for a request's Accept (jsonMediaTypeFor, errorContentType).
 */

/** The `type/subtype` of a Content-Type header, lower-cased, without parameters; '' without a header. */
export function mediaTypeOf(contentType: string | null | undefined): string {
  if (!contentType) return '';
  const end = contentType.indexOf(';');
  return (end === -1 ? contentType : contentType.slice(0, end)).trim().toLowerCase();
}

/**
 * The header with its `type/subtype` lower-cased and its parameters as sent: what Yoga is given,
 * because its request parsers compare the header with `application/json` and `multipart/form-data`
 * case-sensitively (graphql-yoga's isContentTypeMatch), and answered `Application/JSON` with a
 * bare 415 that the cross-site rule had let through.
 */
export function withLowerCaseMediaType(contentType: string): string {
  const end = contentType.indexOf(';');
  return end === -1 ? mediaTypeOf(contentType) : `${mediaTypeOf(contentType)}${contentType.slice(end)}`;
}

/** The media types of Yoga's regular (not streamed) result processor, in its order. */
const REGULAR_MEDIA_TYPES = ['application/graphql-response+json', 'application/json'] as const;

/** Whether an Accept entry (`*\/*`, `application/*`, a type) covers a media type (Yoga's isMatchingMediaType). */
function covers(asked: string, mediaType: string): boolean {
  const [askedType, askedSubtype] = asked.split('/');
  const [type, subtype] = mediaType.split('/');
  return (askedType === '*' || askedType === type) && (askedSubtype === '*' || askedSubtype === subtype);
}

/**
 * The media type Yoga answers a query's or mutation's result with, for this Accept header, or
 * null when it would not be JSON (only streaming types acceptable, or nothing: 406). Yoga's rule
 * (graphql-yoga's result-processor/accept.js and use-result-processor.js): entries with a charset
 * other than utf-8 are ignored, q-values are not read, and the regular processor wins whenever an
 * entry covers one of its types, with the first such entry deciding which (`*\/*` and
 * `application/*` give application/json).
 */
export function jsonMediaTypeFor(accept: string | undefined): string | null {
  for (const entry of (accept || '*/*').replace(/\s/g, '').toLowerCase().split(',')) {
    const [asked, ...params] = entry.split(';');
    const charset = params.find((param) => param.includes('charset=')) ?? 'charset=utf-8';
    if (!asked || charset !== 'charset=utf-8') continue;
    const covered = REGULAR_MEDIA_TYPES.filter((mediaType) => covers(asked, mediaType));
    if (covered.length > 0) return covered[covered.length - 1] as string;
  }
  return null;
}

/**
 * The Content-Type of a JSON error answered outside Yoga (a 401 from the headers, a 413, the SSE
 * transport's refusals): the JSON type Yoga answers the same Accept with, so a client that asked
 * for `application/graphql-response+json` (Apollo Client, urql) reads a 401's `extensions.code` as
 * it reads a 400's; `application/json` where Yoga would answer no JSON type (`text/event-stream`
 * alone). Every error the router or the SSE transport writes takes its type from here.
 */
export function errorContentType(accept: string | undefined): string {
  return `${jsonMediaTypeFor(accept) ?? 'application/json'}; charset=utf-8`;
}
