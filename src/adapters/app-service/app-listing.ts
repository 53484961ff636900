import { appKeyString } from '../../domain/app-key.js';
import { isRecord } from '../../platform/json.js';
import { upstreamExcerpt } from '../../platform/outbound-http.js';
import { parseRfc3339Time } from '../../platform/rfc3339.js';
import type { AppStateEvent, OperationStatus, OperationTarget } from './port.js';
import { DEFAULT_MARKET_SOURCE } from './state-event.js';

/**
 * The app service's list of every app (`GET /all/apps`), read: each item as a state event, and
 * where the operations of given tasks stand according to it (what adopting an operation asks).
 */

/** A listed app's reason and message, as long as the event intake accepts them (state-event.ts). */
const MAX_STORED_TEXT = 2000;

/**
 * Where the operations of `targets` stand, from one listing of every app (the app service has no
 * per-operation query): an operation is known while its app is listed under that op id, or without one. An app listed
 * under another op id has moved on to another operation; an app not listed at all has no
 * operation running (the app service lists an app from the moment it accepts its install), so
 * only an uninstall can be done then.
 */
export function operationStatuses(listing: AppStateEvent[], targets: OperationTarget[]): OperationStatus[] {
  const listed = new Map<string, AppStateEvent>();
  for (const app of listing) {
    const key = appKeyString(app);
    const seen = listed.get(key);
    if (!seen || seen.createTime < app.createTime) listed.set(key, app);
  }
  return targets.map((target): OperationStatus => {
    const app = listed.get(appKeyString(target));
    const op = target.opId ? `operation ${target.opId}` : 'the operation (its op id was never recorded)';
    if (app && target.opId && app.opId && app.opId !== target.opId) {
      return {
        known: false,
        reason: `the app service now runs operation ${app.opId} on ${target.appName} and no longer reports ${op}`,
      };
    }
    if (app) return { known: true, report: app };
    if (target.type === 'UNINSTALL') {
      const reason = 'the app service no longer lists the app';
      return {
        known: true,
        report: {
          userId: target.userId,
          sourceId: target.sourceId,
          appName: target.appName,
          opId: target.opId,
          opType: 'uninstall',
          state: 'uninstalled',
          reason,
          message: reason,
          createTime: new Date(),
        },
      };
    }
    return {
      known: false,
      reason: `the app service lists no app ${target.appName} of ${target.userId}, so it has no record of ${op}`,
    };
  });
}

/** A non-empty string, or null: the app service writes unset fields as "". */
export function textOf(value: unknown): string | null {
  return typeof value === 'string' && value !== '' ? value : null;
}

/** Upstream text stored on the app: without secrets, and bounded as the event intake bounds it. */
function redactedTextOf(value: unknown): string | null {
  const text = textOf(value);
  return text === null ? null : upstreamExcerpt(text, MAX_STORED_TEXT);
}

/** One item of `/all/apps` as a state event, or why it cannot be one. */
export function readListedApp(item: unknown): AppStateEvent | string {
  if (!isRecord(item)) return 'not an object';
  const appName = textOf(item.name);
  const userId = textOf(item.owner);
  const state = textOf(item.state);
  if (!appName) return 'no name';
  if (!userId) return 'no owner';
  if (!state) return 'no state';
  const timeText = textOf(item.statusTime) ?? textOf(item.updateTime);
  const createTime = timeText === null ? null : parseRfc3339Time(timeText);
  if (!createTime)
    return timeText === null ? 'no statusTime or updateTime' : `invalid time ${JSON.stringify(timeText.slice(0, 64))}`;
  const settings = isRecord(item.settings) ? item.settings : {};
  const progress = typeof item.progress === 'number' ? String(item.progress) : textOf(item.progress);
  return {
    userId,
    sourceId: textOf(item.marketSource) ?? textOf(settings.market_source) ?? DEFAULT_MARKET_SOURCE,
    appName,
    rawAppName: textOf(item.rawAppName),
    opId: textOf(item.opID),
    opType: textOf(item.opType),
    state,
    progress,
    // Upstream text that is stored on the app and shown to its owner.
    reason: redactedTextOf(item.reason),
    message: redactedTextOf(item.message),
    createTime,
  };
}
