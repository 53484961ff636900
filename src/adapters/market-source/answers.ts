import { type core, z } from 'zod';
import { MAX_APP_NAME_LENGTH } from '../../domain/app-key.js';
import { isChartVersion, NOT_A_CHART_VERSION } from '../../domain/catalogue-version.js';
import { clipUnits } from '../../domain/text-length.js';
import { isRecord } from '../../platform/json.js';
import { parseRfc3339Time } from '../../platform/rfc3339.js';
import {
  MarketSourceError,
  type SkippedApp,
  type SourceAppSummary,
  type SourceDetails,
  type SourceHash,
  type SourceIndex,
} from './port.js';

/**
 * The shapes of the protocol's answers, as real sources send them (the official Olares market's
 * own client reads the same fields: beclab/market internal/v2/appinfo/syncerfn), and the bounds
 * a source must stay within. Shared by the HTTP client and the bundled catalogue file, so both
 * refuse the same garbage with the same words: `<call>: <field> <what is wrong>`.
 */

/** More apps than this in one index is not a catalogue (the official one has a few hundred). */
export const MAX_INDEX_APPS = 50_000;
/** Real ids are 8 hex digits; the catalogue's columns are not meant for more than this. */
export const MAX_APP_ID_LENGTH = 64;
const MAX_VERSION_LENGTH = 64;
/** Real hashes are 32 (MD5) or 64 (SHA-256) hex digits. */
const MAX_HASH_LENGTH = 256;
/** RFC 3339 with nine fractional digits and an offset is 35 characters. */
const MAX_TIME_LENGTH = 64;
/** Skip reasons name the id; a garbage key is cut to this in messages. */
const SHOWN_KEY_LENGTH = 64;

/** Ids are keys in URLs, logs and columns: letters, digits, `.`, `_`, `-`. */
const APP_ID = /^[A-Za-z0-9][A-Za-z0-9._-]*$/;

/** The parts of `data` besides `apps` that real sources send (read as sent; not stored yet, see SourceIndex.others). */
export const OTHER_SECTIONS = ['tags', 'pages', 'topics', 'topic_lists', 'tops', 'latest', 'recommends'] as const;

export type Call = 'hash' | 'info' | 'details' | 'bundled catalogue';

const hashAnswer = z.object({
  hash: z.string().min(1).max(MAX_HASH_LENGTH),
  last_updated: z.unknown().optional(),
});

const infoAnswer = z.object({
  hash: z.string().min(1).max(MAX_HASH_LENGTH),
  last_updated: z.unknown().optional(),
  data: z.looseObject({
    apps: z.record(z.string(), z.unknown()),
  }),
});

const detailsAnswer = z.object({
  apps: z.record(z.string(), z.unknown()).nullable(),
  not_found: z.array(z.string()).nullish(),
});

const summaryShape = z.looseObject({
  id: z.string().optional(),
  name: z.string().min(1).max(MAX_APP_NAME_LENGTH),
  version: z.string().min(1).max(MAX_VERSION_LENGTH),
});

/** The bundled catalogue file: an info answer's `data` and `last_updated`, plus every app's details. */
const bundledFile = z.object({
  last_updated: z.unknown().optional(),
  data: z.looseObject({
    apps: z.record(z.string(), z.unknown()),
  }),
  details: z.record(z.string(), z.unknown()),
});

export function garbage(call: Call, problem: string): MarketSourceError {
  return new MarketSourceError('garbage', `${call}: ${problem}`);
}

/** `schema` applied to `value`, or a garbage error naming the first field at fault. */
function parse<T>(call: Call, schema: z.ZodType<T>, value: unknown): T {
  const parsed = schema.safeParse(value, { reportInput: true });
  if (parsed.success) return parsed.data;
  throw garbage(call, describeIssue(parsed.error.issues[0]));
}

/** A zod issue in a few words: `data.apps is not an object`, `hash is missing`. */
export function describeIssue(issue: core.$ZodIssue | undefined): string {
  if (!issue) return 'the answer is invalid';
  const field = issue.path.length ? issue.path.map(String).join('.') : 'the answer';
  switch (issue.code) {
    case 'invalid_type': {
      if (issue.input === undefined) return `${field} is missing`;
      const expected = issue.expected === 'record' ? 'object' : issue.expected;
      return `${field} is not ${/^[aeiou]/.test(expected) ? 'an' : 'a'} ${expected}`;
    }
    case 'too_big':
      return issue.origin === 'string'
        ? `${field} is longer than ${issue.maximum} characters`
        : `${field} has more than ${issue.maximum} items`;
    case 'too_small':
      return issue.origin === 'string' && issue.minimum === 1 ? `${field} is empty` : `${field} is too short`;
    default:
      return `${field} is invalid`;
  }
}

/** `last_updated` as written when it is an RFC 3339 time (Go's RFC3339Nano), else null. */
export function timeOrNull(value: unknown): string | null {
  if (typeof value !== 'string' || value.length > MAX_TIME_LENGTH) return null;
  return parseRfc3339Time(value) ? value : null;
}

export function readHash(body: unknown): SourceHash {
  const answer = parse('hash', hashAnswer, body);
  return { hash: answer.hash, lastUpdated: timeOrNull(answer.last_updated) };
}

/**
 * The catalogue index of an info answer. Summaries that cannot be used are skipped, as the
 * official client skips them (one bad app must not stop a catalogue from syncing); an index none
 * of whose summaries can be used is refused, since taking it would empty the catalogue.
 */
export function readInfo(body: unknown, call: Call = 'info'): SourceIndex {
  const answer = parse(call, infoAnswer, body);
  return {
    hash: answer.hash,
    lastUpdated: timeOrNull(answer.last_updated),
    ...readData(call, answer.data),
  };
}

/** `data` of an info answer (or of the bundled file): the summaries and the other sections. */
export function readData(
  call: Call,
  data: Record<string, unknown> & { apps: Record<string, unknown> },
): Pick<SourceIndex, 'apps' | 'others' | 'skipped'> {
  const keys = Object.keys(data.apps);
  if (keys.length > MAX_INDEX_APPS)
    throw garbage(call, `data.apps has ${keys.length} apps, more than ${MAX_INDEX_APPS}`);
  const apps: SourceAppSummary[] = [];
  const skipped: SkippedApp[] = [];
  const names = new Set<string>();
  for (const id of keys) {
    const summary = readSummary(id, data.apps[id]);
    if ('reason' in summary) skipped.push(summary);
    else if (names.has(summary.name)) skipped.push({ id, reason: `another app is already named ${summary.name}` });
    else {
      names.add(summary.name);
      apps.push(summary);
    }
  }
  if (apps.length === 0 && skipped.length > 0) {
    const first = skipped[0] as SkippedApp;
    throw garbage(
      call,
      `none of the ${skipped.length} apps in data.apps can be read (data.apps.${first.id}: ${first.reason})`,
    );
  }

  const others: Record<string, unknown> = {};
  for (const section of OTHER_SECTIONS) {
    const value = data[section];
    if (value === undefined) continue;
    if (value !== null && typeof value !== 'object') throw garbage(call, `data.${section} is not an object or a list`);
    others[section] = value;
  }
  return { apps, others, skipped };
}

function readSummary(id: string, value: unknown): SourceAppSummary | SkippedApp {
  if (id.length > MAX_APP_ID_LENGTH || !APP_ID.test(id)) {
    return { id: clipUnits(id, SHOWN_KEY_LENGTH), reason: 'the key is not an app id' };
  }
  if (!isRecord(value)) return { id, reason: 'the summary is not an object' };
  // summaryShape by hand for the summaries it accepts, by zod to name a fault: readInfo of the
  // 2,000-app bench index took 8–14 ms with zod for every summary, 3–5 ms so.
  if (!fitsSummaryShape(value)) {
    const parsed = summaryShape.safeParse(value, { reportInput: true });
    if (!parsed.success) return { id, reason: describeIssue(parsed.error.issues[0]) };
  }
  const summary = value as z.infer<typeof summaryShape>;
  // As the entry's (catalogue-entry.ts): the summary's version is the one the entry must carry.
  if (!isChartVersion(summary.version)) return { id, reason: `version ${NOT_A_CHART_VERSION}` };
  // The official client drops a summary filed under another app's id.
  if (summary.id !== undefined && summary.id !== id) return { id, reason: 'its id is not its key' };
  return { id, name: summary.name, version: summary.version, updatedAt: timeOrNull(value.updated_at), raw: value };
}

/** True only for a summary summaryShape accepts too. */
function fitsSummaryShape({ id, name, version }: Record<string, unknown>): boolean {
  return (
    (id === undefined || typeof id === 'string') &&
    typeof name === 'string' &&
    name.length >= 1 &&
    name.length <= MAX_APP_NAME_LENGTH &&
    typeof version === 'string' &&
    version.length >= 1 &&
    version.length <= MAX_VERSION_LENGTH
  );
}

/**
 * The entries of a details answer for the ids asked for. Apps not asked for are ignored (a
 * source must not add apps through this door); ids neither answered nor listed in `not_found`
 * count as not found.
 */
export function readDetails(body: unknown, asked: readonly string[]): SourceDetails {
  const answer = parse('details', detailsAnswer, body);
  const apps = new Map<string, Record<string, unknown>>();
  const notFound: string[] = [];
  const skipped: SkippedApp[] = [];
  const answered = answer.apps ?? {};
  for (const id of asked) {
    const entry = Object.hasOwn(answered, id) ? answered[id] : undefined;
    if (entry === undefined || entry === null) notFound.push(id);
    else if (isRecord(entry)) apps.set(id, entry);
    else skipped.push({ id, reason: 'the entry is not an object' });
  }
  return { apps, notFound, skipped };
}

/** A parsed bundled catalogue file: its index (with `hash` given) and every app's entry. */
export function readBundledFile(
  body: unknown,
  hash: string,
): { index: SourceIndex; entries: Map<string, Record<string, unknown>> } {
  const call = 'bundled catalogue';
  const file = parse(call, bundledFile, body);
  const { apps, others, skipped } = readData(call, file.data);
  // The project ships this file: anything it cannot read is a bug to see at once, not to skip.
  const firstSkipped = skipped[0];
  if (firstSkipped) throw garbage(call, `data.apps.${firstSkipped.id}: ${firstSkipped.reason}`);
  const entries = new Map<string, Record<string, unknown>>();
  for (const summary of apps) {
    const entry = file.details[summary.id];
    if (!isRecord(entry)) {
      throw garbage(call, `details.${summary.id} is ${entry === undefined ? 'missing' : 'not an object'}`);
    }
    entries.set(summary.id, entry);
  }
  return { index: { hash, lastUpdated: timeOrNull(file.last_updated), apps, others, skipped: [] }, entries };
}
