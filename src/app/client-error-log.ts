import { loggedText } from '../platform/clip-text.js';
import { LogBudget } from '../platform/log-budget.js';
import type { Logger } from '../platform/logger.js';
import type { ClientError } from './http-server.js';
import type { AppMetrics } from './metrics.js';

/**
 * Lines a minute at most for requests node:http refused: anyone can send them at will (a scanner,
 * a broken client in a loop), so a flood writes these and then, a minute later, one line that
 * says how many it left out; market_http_client_errors_total counts every one of them.
 */
const LINES_PER_MINUTE = 10;
/** Node's own description of the error (it holds no byte of the request, but is clipped and escaped all the same). */
const DETAIL_CHARS = 200;

/**
 * The trace of a request refused before the app saw it (it has no request log line: no request
 * was made of it): counted by reason, and logged within the budget. Nothing of the request is
 * logged but its reason: what node:http read of it may be any header, a credential included.
 */
export function clientErrorLog(logger: Logger, metrics: AppMetrics | null): (refused: ClientError) => void {
  const budget = new LogBudget(LINES_PER_MINUTE, 60_000);
  return ({ reason, status, error, remoteAddress }) => {
    metrics?.clientError(reason);
    const taken = budget.take();
    if (!taken) return;
    const line = {
      reason,
      status,
      detail: loggedText(error.message, DETAIL_CHARS),
      ...(remoteAddress ? { remoteAddress } : {}),
      ...(taken.leftOut > 0 ? { leftOut: taken.leftOut } : {}),
    };
    logger.info(line, 'request refused before it reached the app');
  };
}
