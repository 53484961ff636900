import type { IncomingMessage, ServerResponse } from 'node:http';
import { Readable } from 'node:stream';
import type { FormDataLimits } from '@whatwg-node/fetch';
import { GraphQLError } from 'graphql';
import type { Viewer } from '../auth/viewer.js';
import { isPreflightedUpload } from './cross-site.js';
import { mediaTypeOf } from './media-type.js';
import { validationError } from './validation-error.js';

/** A request body over the limit: answered 413 and the connection closed. */
export class BodyTooLarge extends Error {
  override name = 'BodyTooLarge';
  constructor(
    readonly limit: number,
    setting = 'MAX_BODY_BYTES',
  ) {
    super(`Request body is larger than ${limit} bytes (${setting})`);
  }
}

/** A body limit and the setting(s) it comes from, named when a body passes it. */
export interface BodyLimit {
  bytes: number;
  setting: string;
}

/**
 * The limit of a POST body to /graphql: MAX_BODY_BYTES, except for a chart upload (a preflighted
 * multipart request) from an admin, which may carry a package of CHART_UPLOAD_MAX_BYTES besides
 * its JSON parts. Only admins may upload (`uploadChart`), so nobody else needs more. The viewer is
 * the one the router authenticated from the headers (routes.ts; in local development mode every
 * request is the admin), so this is decided before a byte of the body is read. Inside the body,
 * Yoga's multipart parser holds each part to its own limit (multipartLimits).
 */
export function graphqlBodyLimit(
  req: IncomingMessage,
  config: { maxBodyBytes: number; chartUploadMaxBytes: number },
  viewer: Viewer,
): BodyLimit {
  const { maxBodyBytes, chartUploadMaxBytes } = config;
  if (!isPreflightedUpload(req)) return { bytes: maxBodyBytes, setting: 'MAX_BODY_BYTES' };
  if (viewer.isAdmin) {
    return { bytes: maxBodyBytes + chartUploadMaxBytes, setting: 'MAX_BODY_BYTES + CHART_UPLOAD_MAX_BYTES' };
  }
  return { bytes: maxBodyBytes, setting: "MAX_BODY_BYTES; a larger chart upload needs an admin's credential" };
}

/**
 * What Yoga's multipart parser (busboy, through @whatwg-node/fetch's `formDataLimits`) accepts in
 * a chart upload: `operations` and `map`, each within MAX_BODY_BYTES, and one file within
 * CHART_UPLOAD_MAX_BYTES. Any other part, or a part over its limit, ends the parse with an error
 * before the operation runs (graphql.ts maps it to VALIDATION).
 */
export function multipartLimits({
  maxBodyBytes,
  chartUploadMaxBytes,
}: {
  maxBodyBytes: number;
  chartUploadMaxBytes: number;
}): FormDataLimits {
  return { fields: 2, files: 1, parts: 3, fieldSize: maxBodyBytes, fileSize: chartUploadMaxBytes };
}

/**
 * Reads a request body of at most `limit` bytes. A declared `content-length` over the limit is
 * refused before a byte is read; a chunked body is counted as it arrives and refused the moment it
 * passes the limit, so neither can make the process buffer more than `limit`; the rest of a
 * refused body is not read (the answer closes the connection). A request whose client is already
 * gone rejects as one that goes while it is read (the caller may have awaited before reading).
 *
 * Read with 'data' and 'end' listeners rather than `for await`: the stream's async iterator cost
 * 3–7 µs per request on a loaded core, the listeners ~1 µs (node:http answering a small POST,
 * alternated, µs of CPU per request: 22.5–23.7 without reading the body, 25.3–30.6 with the
 * iterator, 23.5–24.4 with the listeners).
 */
export function readBody(req: IncomingMessage, limit: number, setting?: string): Promise<Buffer> {
  if (Number(req.headers['content-length'] ?? 0) > limit) return Promise.reject(new BodyTooLarge(limit, setting));
  continueIfExpected(req);
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const settle = (error: Error | null) => {
      req.off('data', onData).off('end', onEnd).off('error', settle).off('close', onClose);
      if (error) reject(error);
      else resolve(chunks.length === 1 ? (chunks[0] as Buffer) : Buffer.concat(chunks, size));
    };
    const onData = (chunk: Buffer) => {
      size += chunk.length;
      if (size <= limit) {
        chunks.push(chunk);
        return;
      }
      req.pause();
      settle(new BodyTooLarge(limit, setting));
    };
    const onEnd = () => settle(null);
    const onClose = () => settle(clientGone());
    if (req.readableEnded) resolve(Buffer.alloc(0));
    else if (req.destroyed) reject(req.errored ?? clientGone());
    else req.on('data', onData).on('end', onEnd).on('error', settle).on('close', onClose);
  });
}

/**
 * The responses of requests that sent `Expect: 100-continue` and have not been told to go on yet.
 * node:http answers `100 Continue` at once unless the server handles 'checkContinue'; the HTTP
 * server (app/http-server.ts) does, and registers them here, so the interim answer goes only when a
 * route reads the body within its limit: a body refused for its size (413), its credential (401)
 * or its route is then never sent (RFC 9110 §10.1.1). Every route reads its body through readBody.
 */
const awaitingContinue = new WeakMap<IncomingMessage, ServerResponse>();

/** Holds back `100 Continue` for `req` until its body is read (see awaitingContinue). */
export function continueWhenRead(req: IncomingMessage, res: ServerResponse): void {
  awaitingContinue.set(req, res);
}

function continueIfExpected(req: IncomingMessage): void {
  const res = awaitingContinue.get(req);
  if (!res) return;
  awaitingContinue.delete(req);
  if (!res.headersSent) res.writeContinue();
}

/** A request closed before its end without an error (node:http usually reports it as ECONNRESET). */
function clientGone(): Error {
  return Object.assign(new Error('aborted'), { code: 'ERR_STREAM_PREMATURE_CLOSE' });
}

/**
 * A body already read, in the form Yoga's Node adapter should get it. @whatwg-node/server takes a
 * pre-read `req.body` only after `Object.keys(body).length > 0`, which for a Buffer lists every
 * byte's index: about 1 s of blocked event loop per 3 MiB (measured). A one-chunk stream has a
 * few keys, and the adapter reads it as it would the request itself.
 */
export function bodyForYoga(body: Buffer): Readable {
  return Readable.from([body], { objectMode: false });
}

/**
 * Yoga's multipart parser (the GraphQL multipart request spec) refuses a missing or malformed
 * `operations` or `map` with an error that has no code and no status (answered with HTTP 200), and
 * a `map` whose entries are not lists of paths, or an `operations` that is not an object (`null`,
 * a string: each file is put into it), fails with a TypeError (answered 500, logged as a crash,
 * for anyone: the body is read before authentication). All are the client's mistake: 400
 * `VALIDATION`. Null for any other error.
 */
export function malformedMultipart(req: Request, error: unknown): GraphQLError | null {
  if (mediaTypeOf(req.headers.get('content-type')) !== 'multipart/form-data') return null;
  if (error instanceof GraphQLError) {
    // Yoga's refusals name their field; one with a status (a size limit, bad framing) is answered as it is.
    const field = /multipart form field "(operations|map)"/i.exec(error.message)?.[1];
    if (error.extensions.http || !field) return null;
    return validationError(error.message, { path: field, message: error.message }, { status: 400 });
  }
  if (!(error instanceof TypeError)) return null;
  // Its walk over the map's entries (`for (const key of keys)`, `key.split`), else its writes into `operations`.
  if (/is not iterable|\.split is not a function/.test(error.message)) {
    const problem = 'Multipart form field "map" must map each file to a list of paths, e.g. {"0": ["variables.chart"]}';
    return validationError(problem, { path: 'map', message: problem }, { status: 400 });
  }
  const problem =
    'Multipart form field "operations" must be a JSON object: the request, with null where each file goes';
  return validationError(problem, { path: 'operations', message: problem }, { status: 400 });
}
