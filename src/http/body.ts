import type { IncomingMessage } from 'node:http';

/** A request body over the limit: answered 413 and the connection closed. */
export class BodyTooLarge extends Error {
  override name = 'BodyTooLarge';
  constructor(readonly limit: number) {
    super(`Request body is larger than ${limit} bytes (MAX_BODY_BYTES)`);
  }
}

/**
 * Reads a request body of at most `limit` bytes. A declared `content-length` over the limit is
 * refused before a byte is read; a chunked body is counted as it arrives and refused the moment it
 * passes the limit, so neither can make the process buffer more than `limit`.
 */
export async function readBody(req: IncomingMessage, limit: number): Promise<Buffer> {
  if (Number(req.headers['content-length'] ?? 0) > limit) throw new BodyTooLarge(limit);
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > limit) throw new BodyTooLarge(limit);
    chunks.push(chunk as Buffer);
  }
  return chunks.length === 1 ? (chunks[0] as Buffer) : Buffer.concat(chunks, size);
}
