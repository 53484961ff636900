import { appKeyString } from '../../domain/app-key.js';
import { excerpt } from '../../domain/text-length.js';
import { isRecord } from '../../platform/json.js';
import { upstreamExcerpt } from '../../platform/outbound-http.js';
import { parseRfc3339Time } from '../../platform/rfc3339.js';
import { mergeEntranceStatuses, readEntrances } from './entrances.js';
import {
  type AppListing,
  AppServiceError,
  type AppStateEvent,
  type OperationStatus,
  type OperationTarget,
  type UnreadableListedApp,
} from './port.js';
import { DEFAULT_MARKET_SOURCE, listedIdentityProblem, reportTime } from './state-event.js';

/**
 * The app service's list of every app (`GET /all/apps`), read: each item as a state event, and
 * where the operations of given tasks stand according to it (what adopting an operation asks).
 */

/** A listed app's reason and message, as long as the event intake accepts them (state-event.ts). */
const MAX_STORED_TEXT = 2000;

/** Longest listed version, title or configuration type kept (longer ones are not real ones). */
const MAX_SHORT_TEXT = 200;

/**
 * Where the operations of `targets` stand, from one listing of every app (the app service has no
 * per-operation query): an operation is known while its app is listed under that op id, or without one. An app listed
 * under another op id has moved on to another operation; an app not listed at all has no
 * operation running (the app service lists an app from the moment it accepts its install), so
 * only an uninstall can be done then.
 *
 * What status correction does not trust is no proof here either (an adopted install was failed as
 * `lost` on the empty list of an app service that had just restarted, and then ran anyway): a list
 * of no app at all fails the lookup (asked again), and an app hidden by an item that could not be
 * read (see mayBeListedAs) cannot be told about now.
 */
export function operationStatuses({ apps, unreadable }: AppListing, targets: OperationTarget[]): OperationStatus[] {
  if (apps.length === 0) {
    throw new AppServiceError(
      'invalid_response',
      'the app service listed no apps at all, which does not tell that it has no record of an operation',
    );
  }
  const listed = new Map<string, AppStateEvent>();
  for (const app of apps) {
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
    if (unreadable.some((item) => mayBeListedAs(item, target))) {
      return {
        known: null,
        reason: `an app the app service listed but that could not be read may be ${target.appName}`,
      };
    }
    return {
      known: false,
      reason: `the app service lists no app ${target.appName} of ${target.userId}, so it has no record of ${op}`,
    };
  });
}

/** Whether an item of the list that could not be read may be this app (what it does not say, it may be). */
export function mayBeListedAs(item: UnreadableListedApp, app: { userId: string; appName: string }): boolean {
  return (
    (item.userId === null || item.userId === app.userId) && (item.appName === null || item.appName === app.appName)
  );
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

/**
 * One item of `/all/apps` as a state event, or why it cannot be one. Two shapes are read: the
 * app service's Application resources (`{metadata, spec: {name, owner, isSysApp, entrances,
 * sharedEntrances, settings}, status: {state, statusTime, updateTime, entranceStatuses}}`, what
 * Olares answers) and the flat status objects of the market's own state cache (`{name, owner,
 * state, statusTime, entranceStatuses, …}`).
 */
export function readListedApp(item: unknown, requestedAt = Date.now()): AppStateEvent | string {
  if (!isRecord(item)) return 'not an object';
  const read = isRecord(item.spec)
    ? readApplication(item.spec, isRecord(item.status) ? item.status : {})
    : readFlat(item);
  if (typeof read !== 'string') read.createTime = reportTime(read.createTime, requestedAt); // its own, just made
  return read;
}

/** Whatever an item of `/all/apps` says of its owner and name, read or not (both shapes). */
export function listedIdentity(item: unknown): { userId: string | null; appName: string | null } {
  if (!isRecord(item)) return { userId: null, appName: null };
  const fields = isRecord(item.spec) ? item.spec : item;
  return { userId: textOf(fields.owner), appName: textOf(fields.name) };
}

/** A listed chart's version, title or configuration type: short text or nothing. */
function shortTextOf(...candidates: unknown[]): string | null {
  const text = candidates.map(textOf).find((value) => value !== null) ?? null;
  // U+0000, which PostgreSQL cannot store, is not part of a real version or title either.
  return text !== null && text.length <= MAX_SHORT_TEXT && !text.includes('\u0000') ? text : null;
}

function readFlat(item: Record<string, unknown>): AppStateEvent | string {
  const settings = isRecord(item.settings) ? item.settings : {};
  return readFields({
    appName: textOf(item.name),
    userId: textOf(item.owner),
    state: textOf(item.state),
    times: [item.statusTime, item.updateTime],
    sourceId: textOf(item.marketSource) ?? textOf(settings.market_source),
    rawAppName: textOf(item.rawAppName),
    opId: textOf(item.opID),
    opType: textOf(item.opType),
    progress: item.progress,
    reason: item.reason,
    message: item.message,
    system: item.isSysApp === true || settings.system_service !== undefined,
    entrances: readEntrances(item.entranceStatuses, item.sharedEntrances),
    version: shortTextOf(item.version, settings.version),
    title: shortTextOf(item.title, settings.title),
    cfgType: shortTextOf(item.cfgType, settings.cfgType),
  });
}

function readApplication(spec: Record<string, unknown>, status: Record<string, unknown>): AppStateEvent | string {
  const settings = isRecord(spec.settings) ? spec.settings : {};
  return readFields({
    appName: textOf(spec.name),
    userId: textOf(spec.owner),
    state: textOf(status.state),
    times: [status.statusTime, status.updateTime, status.lastTransitionTime],
    sourceId: textOf(settings.market_source) ?? textOf(settings.marketSource),
    rawAppName: textOf(spec.rawAppName),
    opId: textOf(status.opID),
    opType: textOf(status.opType),
    progress: status.progress,
    reason: status.reason,
    message: status.message,
    // `system_service` marks the app service's own services, which it lists among the apps.
    system: spec.isSysApp === true || settings.system_service !== undefined,
    entrances: mergeEntranceStatuses(spec.entrances, status.entranceStatuses, spec.sharedEntrances),
    version: shortTextOf(spec.version, settings.version),
    title: shortTextOf(spec.title, settings.title),
    cfgType: shortTextOf(spec.cfgType, settings.cfgType),
  });
}

interface ListedFields {
  appName: string | null;
  userId: string | null;
  state: string | null;
  /** Candidates for the state's time, best first. */
  times: unknown[];
  sourceId: string | null;
  rawAppName: string | null;
  opId: string | null;
  opType: string | null;
  progress: unknown;
  reason: unknown;
  message: unknown;
  system: boolean;
  entrances: AppStateEvent['entrances'];
  version?: string | null;
  title?: string | null;
  cfgType?: string | null;
}

function readFields(fields: ListedFields): AppStateEvent | string {
  const { appName, userId, state } = fields;
  if (!appName) return 'no name';
  if (!userId) return 'no owner';
  if (!state) return 'no state';
  const { sourceId, rawAppName, opId, opType } = fields;
  const identity = { name: appName, user: userId, state, marketSource: sourceId, rawAppName, opID: opId, opType };
  // Bounded as a state event is: a name PostgreSQL cannot store failed every run of status correction.
  const problem = listedIdentityProblem(identity);
  if (problem) return problem;
  const timeText = fields.times.map(textOf).find((text) => text !== null) ?? null;
  const createTime = timeText === null ? null : parseRfc3339Time(timeText);
  if (!createTime)
    return timeText === null ? 'no statusTime or updateTime' : `invalid time ${JSON.stringify(excerpt(timeText, 64))}`;
  const progress = typeof fields.progress === 'number' ? String(fields.progress) : textOf(fields.progress);
  return {
    userId,
    sourceId: sourceId ?? DEFAULT_MARKET_SOURCE,
    appName,
    rawAppName,
    opId,
    opType,
    state,
    progress,
    // Upstream text that is stored on the app and shown to its owner.
    reason: redactedTextOf(fields.reason),
    message: redactedTextOf(fields.message),
    createTime,
    ...(fields.system ? { system: true } : {}),
    ...(fields.entrances ? { entrances: fields.entrances } : {}),
    ...(fields.version ? { listedVersion: fields.version } : {}),
    ...(fields.title ? { listedTitle: fields.title } : {}),
    ...(fields.cfgType ? { listedCfgType: fields.cfgType } : {}),
  };
}

/**
 * One item of `/middlewares/status` (`{uuid, namespace, user, resourceStatus, resourceType,
 * createTime, updateTime, metadata: {name}, version, title, market_source}`) as a listed app, or
 * why it cannot be one. Its `resourceStatus` is not the app-state vocabulary: status correction
 * only takes a listed middleware as proof that it exists.
 */
export function readListedMiddleware(item: unknown): AppStateEvent | string {
  if (!isRecord(item)) return 'not an object';
  const metadata = isRecord(item.metadata) ? item.metadata : {};
  return readFields({
    appName: textOf(metadata.name),
    userId: textOf(item.user),
    state: textOf(item.resourceStatus) ?? 'unknown',
    times: [item.updateTime, item.createTime],
    sourceId: textOf(item.market_source),
    rawAppName: null,
    opId: null,
    opType: null,
    progress: null,
    reason: null,
    message: null,
    system: false,
    entrances: undefined,
  });
}

/** The items of `/middlewares/status` that can be read, and why the others cannot; null when it is no list. */
export function readListedMiddlewares(data: unknown): { middlewares: AppStateEvent[]; problems: string[] } | null {
  if (!Array.isArray(data)) return null;
  const middlewares: AppStateEvent[] = [];
  const problems: string[] = [];
  for (const item of data) {
    const read = readListedMiddleware(item);
    if (typeof read === 'string') problems.push(read);
    else middlewares.push(read);
  }
  return { middlewares, problems };
}
