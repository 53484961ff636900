import type { Logger } from '../../platform/logger.js';
import { isRecord, isTimeout, networkProblem } from '../../platform/outbound-http.js';
import { redactSecrets } from '../../platform/redact.js';
import { parseRfc3339Time } from '../../platform/rfc3339.js';

/**
 * Polls the chart repo's status endpoint once per (user, source) and merges the answers into one
 * ChartRepoStatus (market-domain §2.7, §2.11 step 4). It never throws: a call that fails is
 * described in `lastError`, and when every call fails the last good data is kept, so one bad tick
 * does not blank the dashboard. The same status is also built per user over that user's own calls
 * only (`byUser`), since a non-admin may see nothing of another user's apps, images, tasks or
 * failures (the scoping itself is RuntimeService's). Upstream text in `lastError` carries no secret.
 *
 * The nested blocks keep the chart repo's own snake_case field names, with two normalisations:
 * every timestamp field becomes an ISO string (or null when absent, unparseable or Go's zero
 * time), and the image analyzer's `average_analysis_time` becomes a number of milliseconds (or null).
 */

export interface ChartRepoStatus {
  reachable: boolean;
  lastError: string | null;
  /** When data was last fetched successfully; kept through failures along with that data. */
  lastUpdate: Date | null;
  system: Record<string, unknown> | null;
  /** ChartRepoAppState objects, concatenated over the (user, source) pairs in the order given. */
  apps: unknown[];
  images: unknown[];
  tasks: { hydrator: Record<string, unknown> | null; imageAnalyzer: Record<string, unknown> | null } | null;
}

/** One collect: the status over every call (what admins see), and each user's over their own calls. */
export interface ChartRepoCollection {
  all: ChartRepoStatus;
  /** By user id; a user on whose behalf no call was made (no apps) has none. */
  byUser: ReadonlyMap<string, ChartRepoStatus>;
}

export interface ChartRepoSourceOptions {
  /** Where the chart repo listens, e.g. `http://localhost:82`. */
  baseUrl: string;
  /** Per call, not per collect. @default 5000 */
  timeoutMs?: number;
  logger: Logger;
}

export interface ChartRepoPair {
  userId: string;
  sourceId: string;
}

const STATUS_PATH = '/chart-repo/api/v2/status';

/** The calls run side by side so one slow user does not delay the rest; bounded so a big cluster is not a burst. */
const MAX_PARALLEL_CALLS = 8;

/** Long enough for a real explanation, short enough that an upstream stack trace does not fill the dashboard. */
const MAX_UPSTREAM_MESSAGE = 200;

/** Beyond this, lastError counts the remaining failures instead of listing them. */
const MAX_LISTED_FAILURES = 5;

const HYDRATOR_COUNTERS = ['queue_length', 'active_tasks', 'completed_tasks', 'failed_tasks'] as const;
const HYDRATOR_LISTS = ['tasks', 'recent_failed'] as const;

/** Every field of §2.7 that is a Go time.Time, wherever it is nested. */
const TIMESTAMP_FIELDS = new Set([
  'last_update',
  'created_at',
  'last_updated_at',
  'started_at',
  'updated_at',
  'completed_at',
  'analyzed_at',
  'last_check',
]);

/** What one successful call contributed. */
interface Answer {
  system: Record<string, unknown> | null;
  apps: unknown[];
  images: unknown[];
  hydrator: Record<string, unknown> | null;
  imageAnalyzer: Record<string, unknown> | null;
}

type Outcome = ({ ok: true; answer: Answer } | { ok: false; call: string; problem: string }) & {
  /** On whose behalf the call was made; null for the call for all users. */
  userId: string | null;
};

export class ChartRepoSource {
  private readonly baseUrl: string;
  private readonly timeoutMs: number;
  private readonly logger: Logger;
  private latest: ChartRepoCollection | null = null;
  private lastGood: ChartRepoStatus | null = null;
  /** Each user's last reachable status, for the users of the latest collect. */
  private lastGoodByUser = new Map<string, ChartRepoStatus>();
  private collectsStarted = 0;
  /** The start number of the collect whose result is `latest`, so an overtaken collect cannot overwrite a newer one. */
  private latestCollect = 0;
  private lastLoggedError: string | null = null;

  constructor(options: ChartRepoSourceOptions) {
    this.baseUrl = options.baseUrl.replace(/\/+$/, '');
    this.timeoutMs = options.timeoutMs ?? 5_000;
    this.logger = options.logger;
  }

  /** The last status returned by collect (null before the first). */
  get current(): ChartRepoStatus | null {
    return this.latest?.all ?? null;
  }

  /**
   * Fetches `GET {baseUrl}/chart-repo/api/v2/status?user=…&source=…&include=apps,images,tasks` for
   * every pair and aggregates the answers. No pairs means one call on nobody's behalf, which the
   * chart repo answers for everyone.
   */
  async collect(pairs: ChartRepoPair[], now: Date = new Date()): Promise<ChartRepoStatus> {
    return (await this.collectByUser(pairs, now)).all;
  }

  /** As collect, with each user's status over their own calls besides (same rules, their own last good data). */
  async collectByUser(pairs: ChartRepoPair[], now: Date = new Date()): Promise<ChartRepoCollection> {
    const collect = ++this.collectsStarted;
    const calls = pairs.length === 0 ? [null] : uniquePairs(pairs);
    const outcomes = await mapBounded(calls, MAX_PARALLEL_CALLS, (pair) => this.fetchOne(pair));

    const all = merge(outcomes, now, this.lastGood);
    const byUser = new Map<string, ChartRepoStatus>();
    const outcomesByUser = new Map<string, Outcome[]>();
    for (const outcome of outcomes) {
      if (outcome.userId === null) continue;
      outcomesByUser.set(outcome.userId, [...(outcomesByUser.get(outcome.userId) ?? []), outcome]);
    }
    for (const [userId, own] of outcomesByUser) {
      byUser.set(userId, merge(own, now, this.lastGoodByUser.get(userId) ?? null));
    }

    if (collect > this.latestCollect) {
      this.latestCollect = collect;
      this.latest = { all, byUser };
      if (all.reachable) this.lastGood = all;
      // Only the users of this collect: one whose apps are gone is forgotten.
      const lastGoodByUser = new Map<string, ChartRepoStatus>();
      for (const [userId, status] of byUser) {
        const good = status.reachable ? status : this.lastGoodByUser.get(userId);
        if (good) lastGoodByUser.set(userId, good);
      }
      this.lastGoodByUser = lastGoodByUser;
      this.logOutcome(all, outcomes.filter((outcome) => !outcome.ok).length, calls.length);
    }
    return { all, byUser };
  }

  /** Warns when the failures change rather than on every tick, so a chart repo that stays down is one log line. */
  private logOutcome(status: ChartRepoStatus, failed: number, total: number): void {
    if (status.lastError === this.lastLoggedError) return;
    this.lastLoggedError = status.lastError;
    if (status.lastError === null) {
      this.logger.info({ calls: total }, 'chart repo status calls succeed again');
    } else {
      this.logger.warn(
        { failed, calls: total, reachable: status.reachable, problem: status.lastError },
        'chart repo status calls failed',
      );
    }
  }

  private async fetchOne(pair: ChartRepoPair | null): Promise<Outcome> {
    const call = pair ? `${pair.userId}/${pair.sourceId}` : 'all users';
    const userId = pair?.userId ?? null;
    const query = pair
      ? `user=${encodeURIComponent(pair.userId)}&source=${encodeURIComponent(pair.sourceId)}&include=apps,images,tasks`
      : 'include=apps,images,tasks';
    // Shown on the dashboard and logged: nothing secret-shaped an upstream wrote travels on.
    const fail = (problem: string): Outcome => ({ ok: false, call, problem: redactSecrets(problem), userId });

    const startedAt = performance.now();
    let response: Response;
    let text: string;
    try {
      response = await fetch(`${this.baseUrl}${STATUS_PATH}?${query}`, {
        signal: AbortSignal.timeout(this.timeoutMs),
      });
      text = await response.text();
    } catch (error) {
      if (isTimeout(error)) return fail(`no answer within ${this.timeoutMs} ms`);
      return fail(`unreachable (${networkProblem(error)})`);
    }
    const httpStatus = response.status;
    this.logger.debug(
      { call, status: httpStatus, durationMs: Math.round(performance.now() - startedAt) },
      'chart repo status call',
    );

    let body: unknown;
    let isJson = true;
    try {
      body = JSON.parse(text);
    } catch {
      isJson = false;
    }
    const message = isJson && isRecord(body) ? upstreamMessage(body.message) : '';
    if (httpStatus < 200 || httpStatus >= 300) return fail(`HTTP ${httpStatus}${message ? `: ${message}` : ''}`);
    if (!isJson) return fail(`HTTP ${httpStatus} with a body that is not JSON`);
    if (!isRecord(body) || typeof body.success !== 'boolean') {
      return fail('the answer is not the {success, message, data} envelope');
    }
    if (!body.success) return fail(`the chart repo refused: ${message || 'success is false, without a message'}`);
    if (!isRecord(body.data)) return fail('the answer has no status object in data');

    try {
      return { ok: true, answer: readAnswer(body.data), userId };
    } catch (error) {
      // A bug here must cost one call, not the whole collect; the message is enough, the stack goes to the log.
      this.logger.error({ call, err: error }, 'could not read a chart repo status');
      return fail(`the status could not be read (${error instanceof Error ? error.message : String(error)})`);
    }
  }
}

/** The status over some calls' outcomes; `kept` gives the data when none of them was answered. */
function merge(outcomes: Outcome[], now: Date, kept: ChartRepoStatus | null): ChartRepoStatus {
  const answers: Answer[] = [];
  const failures: { call: string; problem: string }[] = [];
  for (const outcome of outcomes) {
    if (outcome.ok) answers.push(outcome.answer);
    else failures.push(outcome);
  }
  const lastError = failures.length === 0 ? null : describeFailures(failures, outcomes.length);
  if (answers.length > 0) return { reachable: true, lastError, lastUpdate: now, ...aggregate(answers) };
  const data = kept ?? { lastUpdate: null, system: null, apps: [], images: [], tasks: null };
  return {
    reachable: false,
    lastError,
    lastUpdate: data.lastUpdate,
    system: data.system,
    apps: data.apps,
    images: data.images,
    tasks: data.tasks,
  };
}

function uniquePairs(pairs: ChartRepoPair[]): ChartRepoPair[] {
  // The same pair twice would count its apps and hydrator counters twice.
  const seen = new Set<string>();
  return pairs.filter(({ userId, sourceId }) => {
    const key = JSON.stringify([userId, sourceId]);
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  });
}

/** Runs `work` over `items` with at most `limit` at a time, keeping the results in the order of `items`. */
async function mapBounded<T, R>(items: T[], limit: number, work: (item: T) => Promise<R>): Promise<R[]> {
  const results = new Array<R>(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const index = next++;
      results[index] = await work(items[index] as T);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return results;
}

/**
 * The first line of an upstream message, capped, since a Go panic message may carry a whole trace;
 * redacted before it is cut, so a cut cannot leave a piece of a secret unrecognised.
 */
function upstreamMessage(value: unknown): string {
  if (typeof value !== 'string') return '';
  const firstLine = redactSecrets((value.trim().split('\n', 1)[0] ?? '').slice(0, 4 * MAX_UPSTREAM_MESSAGE));
  return firstLine.length > MAX_UPSTREAM_MESSAGE ? `${firstLine.slice(0, MAX_UPSTREAM_MESSAGE)}…` : firstLine;
}

function describeFailures(failures: { call: string; problem: string }[], total: number): string {
  const listed = failures.slice(0, MAX_LISTED_FAILURES).map(({ call, problem }) => `${call}: ${problem}`);
  const rest = failures.length - listed.length;
  if (rest > 0) listed.push(`and ${rest} more`);
  const calls = total === 1 ? 'call' : 'calls';
  return `${failures.length} of ${total} chart repo status ${calls} failed: ${listed.join('; ')}`;
}

function readAnswer(data: Record<string, unknown>): Answer {
  const tasks = isRecord(data.tasks) ? data.tasks : {};
  const system = nonEmpty(data.system);
  const imageAnalyzer = nonEmpty(tasks.image_analyzer);
  return {
    system: system && normalised(system),
    apps: records(data.apps).map(normalised),
    images: records(data.images).map(normalised),
    hydrator: isRecord(tasks.hydrator) ? normalised(tasks.hydrator) : null,
    imageAnalyzer: imageAnalyzer && {
      ...normalised(imageAnalyzer),
      average_analysis_time: durationMs(imageAnalyzer.average_analysis_time),
    },
  };
}

function aggregate(answers: Answer[]): Pick<ChartRepoStatus, 'system' | 'apps' | 'images' | 'tasks'> {
  let system: Record<string, unknown> | null = null;
  let hydrator: Record<string, unknown> | null = null;
  let imageAnalyzer: Record<string, unknown> | null = null;
  const apps: unknown[] = [];
  const images: unknown[] = [];
  for (const answer of answers) {
    system ??= answer.system;
    apps.push(...answer.apps);
    images.push(...answer.images);
    if (answer.hydrator) {
      hydrator = hydrator ? mergeHydrators(hydrator, answer.hydrator) : startHydrator(answer.hydrator);
    }
    imageAnalyzer = answer.imageAnalyzer ?? imageAnalyzer;
  }
  const tasks = hydrator || imageAnalyzer ? { hydrator, imageAnalyzer } : null;
  return { system, apps, images, tasks };
}

/** Any other field of the hydrator block is taken from the first one. */
function startHydrator(block: Record<string, unknown>): Record<string, unknown> {
  const hydrator: Record<string, unknown> = { ...block, worker_count: count(block.worker_count) };
  for (const field of HYDRATOR_COUNTERS) hydrator[field] = count(block[field]);
  for (const field of HYDRATOR_LISTS) hydrator[field] = records(block[field]);
  return hydrator;
}

function mergeHydrators(into: Record<string, unknown>, block: Record<string, unknown>): Record<string, unknown> {
  const merged = { ...into };
  for (const field of HYDRATOR_COUNTERS) merged[field] = count(into[field]) + count(block[field]);
  for (const field of HYDRATOR_LISTS) merged[field] = [...records(into[field]), ...records(block[field])];
  // Every call is answered by the same chart repo and its one worker pool: summing would multiply
  // the pool by the number of users, and the Go original's constant 0 hid it. The first non-zero
  // report is the pool size.
  if (count(into.worker_count) === 0) merged.worker_count = count(block.worker_count);
  return merged;
}

function count(value: unknown): number {
  return typeof value === 'number' && Number.isFinite(value) ? value : 0;
}

function records(value: unknown): Record<string, unknown>[] {
  return Array.isArray(value) ? value.filter(isRecord) : [];
}

function nonEmpty(value: unknown): Record<string, unknown> | null {
  return isRecord(value) && Object.keys(value).length > 0 ? value : null;
}

/** A deep copy in which every timestamp field is an ISO string or null. */
function normalised(value: Record<string, unknown>): Record<string, unknown> {
  const copy: Record<string, unknown> = {};
  for (const [key, field] of Object.entries(value)) {
    if (TIMESTAMP_FIELDS.has(key) && !isRecord(field) && !Array.isArray(field)) copy[key] = isoTime(field);
    else copy[key] = normalisedValue(field);
  }
  return copy;
}

function normalisedValue(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(normalisedValue);
  return isRecord(value) ? normalised(value) : value;
}

/** RFC 3339 to ISO (milliseconds, UTC); Go's zero time (year 1) is how it writes "never", so it becomes null too. */
function isoTime(value: unknown): string | null {
  const time = typeof value === 'string' ? parseRfc3339Time(value) : null;
  return time && time.getUTCFullYear() > 1 ? time.toISOString() : null;
}

const DURATION_UNITS_MS: Record<string, number> = {
  ns: 1e-6,
  us: 1e-3,
  µs: 1e-3,
  μs: 1e-3,
  ms: 1,
  s: 1_000,
  m: 60_000,
  h: 3_600_000,
};

const DURATION_PART = /(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|μs|ms|s|m|h)/y;

/**
 * A Go duration string (`1.5s`, `250ms`, `1m30s`, as time.ParseDuration reads them) or a number
 * already in milliseconds, as milliseconds; anything else is null. §2.7 notes that Go marshals a
 * time.Duration as integer nanoseconds, but the collector we re-model reads numbers as milliseconds,
 * so that is the contract kept here.
 */
function durationMs(value: unknown): number | null {
  if (typeof value === 'number') return Number.isFinite(value) ? value : null;
  if (typeof value !== 'string') return null;
  const sign = value.startsWith('-') ? -1 : 1;
  const text = value.replace(/^[+-]/, '');
  if (text === '0') return 0;
  if (text === '') return null;
  let total = 0;
  DURATION_PART.lastIndex = 0;
  while (DURATION_PART.lastIndex < text.length) {
    const part = DURATION_PART.exec(text);
    if (!part) return null;
    total += Number(part[1]) * (DURATION_UNITS_MS[part[2] as string] as number);
  }
  // Rounded to the nanosecond, the finest a Go duration holds, so 1.1s is 1100 and not 1100.0000000000002.
  return (sign * Math.round(total * 1e6)) / 1e6;
}
