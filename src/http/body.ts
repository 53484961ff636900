import type { IncomingMessage } from 'node:http';
import { Readable } from 'node:stream';
import { isPreflightedUpload } from './cross-site.js';

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
 * multipart request), which may carry a package of CHART_UPLOAD_MAX_BYTES besides its JSON parts
 * (`operations`, `map`: within MAX_BODY_BYTES). The package's own limit is checked on the file.
 */
export function graphqlBodyLimit(
  req: IncomingMessage,
  { maxBodyBytes, chartUploadMaxBytes }: { maxBodyBytes: number; chartUploadMaxBytes: number },
): BodyLimit {
  return isPreflightedUpload(req)
    ? { bytes: maxBodyBytes + chartUploadMaxBytes, setting: 'MAX_BODY_BYTES + CHART_UPLOAD_MAX_BYTES' }
    : { bytes: maxBodyBytes, setting: 'MAX_BODY_BYTES' };
}

/**
 * Reads a request body of at most `limit` bytes. A declared `content-length` over the limit is
 * refused before a byte is read; a chunked body is counted as it arrives and refused the moment it
 * passes the limit, so neither can make the process buffer more than `limit`.
 */
export async function readBody(req: IncomingMessage, limit: number, setting?: string): Promise<Buffer> {
  if (Number(req.headers['content-length'] ?? 0) > limit) throw new BodyTooLarge(limit, setting);
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > limit) throw new BodyTooLarge(limit, setting);
    chunks.push(chunk as Buffer);
  }
  return chunks.length === 1 ? (chunks[0] as Buffer) : Buffer.concat(chunks, size);
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
