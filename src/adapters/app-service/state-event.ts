import { z } from 'zod';
import { RESERVED_USER_IDS } from '../../auth/user-id.js';
import { MAX_APP_NAME_LENGTH } from '../../domain/app-key.js';
import { type FieldIssue, ValidationError } from '../../domain/errors.js';
import { redactSecrets } from '../../platform/redact.js';
import { parseRfc3339Time } from '../../platform/rfc3339.js';
import { readEntrances } from './entrances.js';
import type { AppStateEvent } from './port.js';

/**
 * Validation of the state events the app service POSTs to our intake (`POST /events/app-state`).
 * The intake is reachable from the cluster, so every string is bounded: a broken or hostile sender
 * must not be able to store huge values on the app's state row.
 *
 * Every value that passes can be stored by both databases. PostgreSQL refuses U+0000 in text:
 * free text (progress, reason, message) loses it, since it carries nothing there; a name or an
 * identifier with one names nothing that can exist, so the event is malformed.
 */

/** Events without a market source come from the default catalogue, as in the Go market. */
export const DEFAULT_MARKET_SOURCE = 'market.olares';

function text(max: number) {
  return z
    .string({ error: (issue) => (issue.input === undefined ? 'is required' : 'must be a string') })
    .max(max, `must be at most ${max} characters`);
}

const NUL = '\u0000';

/** Names, identifiers and states. */
function name(max: number) {
  return text(max).refine((value) => !value.includes(NUL), 'must not contain U+0000');
}

function requiredName(max: number) {
  return name(max).min(1, 'must not be empty');
}

/** Go writes unset strings as "" (or null for pointers); both mean "not given" here. */
function optionalName(max: number) {
  return name(max)
    .nullish()
    .transform((value) => value || null);
}

function optionalFreeText(max: number) {
  return text(max)
    .nullish()
    .transform((value) => value?.replaceAll(NUL, '') || null);
}

/**
 * What names the app and its operation, as an event and an item of the app service's list say it
 * alike (app-listing.ts checks a listed item against the same bounds).
 */
const identityShape = {
  name: requiredName(MAX_APP_NAME_LENGTH),
  // The server writes its own records under `system` (auth/user-id.ts): no app service user is it.
  user: requiredName(128).refine((value) => !RESERVED_USER_IDS.has(value), 'names a user id the server reserves'),
  state: requiredName(64),
  marketSource: optionalName(128),
  rawAppName: optionalName(MAX_APP_NAME_LENGTH),
  opID: optionalName(128),
  opType: optionalName(64),
};
/** Each field's longest length, as identityShape has it (fitsIdentity's copy of its rule). */
const IDENTITY_MAX = Object.entries({
  name: MAX_APP_NAME_LENGTH,
  user: 128,
  state: 64,
  marketSource: 128,
  rawAppName: MAX_APP_NAME_LENGTH,
  opID: 128,
  opType: 64,
}) as [keyof typeof identityShape, number][];

/**
 * How far ahead of this server's clock a report's time may be. A later one (an app service whose
 * clock is wrong) is taken as received now: kept as it was, a time in 2999 held the app's state
 * for good, since no report or list after it counted as newer.
 */
export const MAX_REPORT_CLOCK_AHEAD_MS = 60_000;

/** A report's time, or now when it is further ahead than MAX_REPORT_CLOCK_AHEAD_MS. */
export function reportTime(time: Date, now = Date.now()): Date {
  return time.getTime() > now + MAX_REPORT_CLOCK_AHEAD_MS ? new Date(now) : time;
}

const identitySchema = z.object(identityShape);
type Identity = Partial<Record<keyof typeof identityShape, string | null>>;

/**
 * Whether every field is within identityShape, without zod: status correction reads every item of
 * a list of up to 100k apps at each run (measured, 100k items read: 110 ms before any check,
 * 370 ms checked by zod, 140 ms by this). Zod, the rule's one statement, still gives the reason
 * of an item this refuses.
 */
function fitsIdentity(fields: Identity): boolean {
  for (const [key, max] of IDENTITY_MAX) {
    const value = fields[key];
    if (value === null || value === undefined) {
      if (key === 'name' || key === 'user' || key === 'state') return false;
    } else if (value.length > max || value.includes(NUL)) return false;
  }
  return Boolean(fields.name && fields.user && fields.state) && !RESERVED_USER_IDS.has(fields.user as string);
}

/** Why an item of the app service's list cannot name an app (as an event could not), or null. */
export function listedIdentityProblem(fields: Identity): string | null {
  if (fitsIdentity(fields)) return null;
  const parsed = identitySchema.safeParse(fields);
  if (parsed.success) return null;
  return parsed.error.issues.map((issue) => `${issue.path.join('.')} ${issue.message}`).join('; ');
}

const eventSchema = z.object({
  ...identityShape,
  createTime: text(64).transform((value, ctx) => {
    const time = parseRfc3339Time(value);
    if (!time) {
      ctx.addIssue({ code: 'custom', message: 'must be an RFC 3339 time, e.g. 2026-11-22T10:00:00.123456789Z' });
      return z.NEVER;
    }
    return time;
  }),
  // Progress is text ("42.5") in the Go struct, but a number is what a sender most plausibly sends instead.
  progress: z
    .union([z.string().max(64), z.number().finite()], { error: 'must be a string of at most 64 characters' })
    .nullish()
    .transform((value) => (value === null || value === undefined ? null : String(value).replaceAll(NUL, '') || null)),
  reason: optionalFreeText(2000),
  message: optionalFreeText(2000),
  // eventID and title are not kept, so they are not read; the entrances are read leniently, apart
  // (entrances.ts): a bad entrance drops that entrance, never the state report.
});

/** Turns the body of a state event into an AppStateEvent, or throws a ValidationError naming each bad field. */
export function parseAppStateEvent(body: unknown): AppStateEvent {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) {
    throw new ValidationError('invalid app-state event: body must be a JSON object', [
      { path: 'body', message: 'must be a JSON object' },
    ]);
  }
  const parsed = eventSchema.safeParse(body);
  if (!parsed.success) {
    const issues: FieldIssue[] = [];
    for (const issue of parsed.error.issues) {
      const path = issue.path.join('.');
      if (!issues.some((known) => known.path === path)) issues.push({ path, message: issue.message });
    }
    const summary = issues.map((issue) => `${issue.path} ${issue.message}`).join('; ');
    throw new ValidationError(`invalid app-state event: ${summary}`, issues);
  }
  const event = parsed.data;
  const { entranceStatuses, sharedEntrances } = body as Record<string, unknown>;
  const entrances = readEntrances(entranceStatuses, sharedEntrances);
  return {
    userId: event.user,
    sourceId: event.marketSource ?? DEFAULT_MARKET_SOURCE,
    appName: event.name,
    rawAppName: event.rawAppName,
    opId: event.opID,
    opType: event.opType,
    state: event.state,
    progress: event.progress,
    // Upstream text, stored on the app and the task and published: it may quote the request's secrets.
    reason: event.reason && redactSecrets(event.reason),
    message: event.message && redactSecrets(event.message),
    createTime: reportTime(event.createTime),
    ...(entrances ? { entrances } : {}),
  };
}
