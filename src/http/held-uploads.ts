import type { IncomingMessage } from 'node:http';
import type { Viewer } from '../auth/viewer.js';
import { isPreflightedUpload, type Refusal } from './cross-site.js';

/**
 * Chart uploads (an admin's preflighted multipart POST, up to MAX_BODY_BYTES + CHART_UPLOAD_MAX_BYTES)
 * this instance holds at once, from before the body is read until the request is answered. The
 * uploads themselves run one at a time (ChartUploadService), but each body was read whole first and
 * copied twice more (Yoga's multipart parse, the file's bytes) while it waited its turn: 48
 * concurrent 10 MiB uploads took the process from 274 to 855 MB (~12 MB each). Eight: one
 * unpacking, seven waiting, ~100 MB at most; an admin uploading a batch of charts sends a few at once.
 */
export const UPLOADS_AT_ONCE = 8;

/** How long a refused upload's client should wait: an upload ahead of it takes seconds. */
const RETRY_AFTER_S = 5;

/** What the router answers an upload beyond UPLOADS_AT_ONCE, before a byte of its body is read. */
export const UPLOADS_BUSY: Refusal & { retryAfterS: number } = {
  status: 429,
  code: 'LIMIT_EXCEEDED',
  message: `Too many chart uploads at once on this instance (at most ${UPLOADS_AT_ONCE}): retry shortly.`,
  retryAfterS: RETRY_AFTER_S,
};

/** Places for the upload bodies an instance holds at once (see UPLOADS_AT_ONCE). */
export class HeldUploads {
  private held = 0;

  constructor(readonly max = UPLOADS_AT_ONCE) {}

  /**
   * Whether `req` is an upload with an upload's body limit (graphqlBodyLimit: an admin's); another
   * sender's multipart POST is held to MAX_BODY_BYTES, as any request, and takes no place.
   */
  static counts(req: IncomingMessage, viewer: Viewer): boolean {
    return viewer.isAdmin && isPreflightedUpload(req);
  }

  /** Takes a place; false when all are held. Given back with `release`. */
  take(): boolean {
    if (this.held >= this.max) return false;
    this.held++;
    return true;
  }

  release(): void {
    this.held--;
  }
}
