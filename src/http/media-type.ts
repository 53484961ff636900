/**
 * A request's media type: every check of a request's Content-Type goes through here. Media types
 * are case-insensitive (RFC 9110 §8.3.1): `Application/JSON; charset=UTF-8` is JSON to the
 * cross-site rule, the lean path, the SSE transports and Yoga alike, and `Text/Plain` is a form's
 * `text/plain`, which the cross-site rule refuses. (Not the `content-type` package: only a
 * dependency of negotiator, and all that is needed of the header is its `type/subtype`.)
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
