import { excerpt } from '../../domain/text-length.js';
import { isRecord } from '../../platform/json.js';
import type { Logger } from '../../platform/logger.js';
import { fetchJson, unreadBody } from '../../platform/outbound-http.js';
import { redactSecrets } from '../../platform/redact.js';
import type { ChartRepo, ChartRepoCollection, ChartRepoPair, ChartRepoStatus } from './port.js';
import { type Answer, aggregate, readAnswer, shapeProblem } from './status-answer.js';

/**
 * Polls the chart repo's status endpoint once per (user, source) and merges the answers into one
 * ChartRepoStatus. It never throws: a call that fails is described in `lastError`, and when every
 * call fails the last good data is kept, so one bad tick does not blank the dashboard. The same
 * status is also built per user over that user's own calls only (`byUser`), since a non-admin may
 * see nothing of another user's apps, images, tasks or failures (the scoping itself is
 * RuntimeService's). Upstream text in `lastError` carries no secret.
 */

export interface HttpChartRepoOptions {
  /** Where the chart repo listens, e.g. `http://localhost:82`. */
  baseUrl: string;
  /** Per call, not per collect (CHART_REPO_TIMEOUT_MS). @default 5000 */
  timeoutMs?: number;
  logger: Logger;
}

const STATUS_PATH = '/chart-repo/api/v2/status';

/** The calls run side by side so one slow user does not delay the rest; bounded so a big cluster is not a burst. */
const MAX_PARALLEL_CALLS = 8;

/** Long enough for a real explanation, short enough that an upstream stack trace does not fill the dashboard. */
const MAX_UPSTREAM_MESSAGE = 200;

/** Beyond this, lastError counts the remaining failures instead of listing them. */
const MAX_LISTED_FAILURES = 5;

type Outcome = ({ ok: true; answer: Answer } | { ok: false; call: string; problem: string }) & {
  /** On whose behalf the call was made; null for the call for all users. */
  userId: string | null;
};

export class HttpChartRepo implements ChartRepo {
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
  private lastLoggedDropped = 0;

  constructor(options: HttpChartRepoOptions) {
    this.baseUrl = options.baseUrl.replace(/\/+$/, '');
    this.timeoutMs = options.timeoutMs ?? 5_000;
    this.logger = options.logger;
  }

  /**
   * Each call answers or fails within timeoutMs, reading included, and they run MAX_PARALLEL_CALLS
   * at a time: so many rounds of timeoutMs, and a second for merging the answers.
   */
  collectBoundMs(pairs: number): number {
    return this.timeoutMs * Math.ceil(Math.max(pairs, 1) / MAX_PARALLEL_CALLS) + 1_000;
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

  /**
   * As collect, with each user's status over their own calls besides (same rules, their own last
   * good data); `held`: what the runtime shows now, kept when every call fails and it is newer
   * than this process's last good data.
   */
  async collectByUser(
    pairs: ChartRepoPair[],
    now: Date = new Date(),
    held: ChartRepoCollection | null = null,
  ): Promise<ChartRepoCollection> {
    const collect = ++this.collectsStarted;
    const calls = pairs.length === 0 ? [null] : uniquePairs(pairs);
    const outcomes = await mapBounded(calls, MAX_PARALLEL_CALLS, (pair) => this.fetchOne(pair));

    const all = merge(outcomes, now, newer(this.lastGood, held?.all ?? null));
    const byUser = new Map<string, ChartRepoStatus>();
    const outcomesByUser = new Map<string, Outcome[]>();
    for (const outcome of outcomes) {
      if (outcome.userId === null) continue;
      outcomesByUser.set(outcome.userId, [...(outcomesByUser.get(outcome.userId) ?? []), outcome]);
    }
    for (const [userId, own] of outcomesByUser) {
      byUser.set(
        userId,
        merge(own, now, newer(this.lastGoodByUser.get(userId) ?? null, held?.byUser.get(userId) ?? null)),
      );
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
    const dropped = status.reachable ? (status.droppedItems ?? 0) : this.lastLoggedDropped;
    if (dropped !== this.lastLoggedDropped) {
      this.lastLoggedDropped = dropped;
      // Malformed items stay in the raw blocks, another user's are gone from both (belongsToPair): either way one line per change.
      if (dropped > 0) this.logger.warn({ dropped }, 'chart repo status items left out of the typed status');
    }
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

    const outcome = await fetchJson({
      url: `${this.baseUrl}${STATUS_PATH}?${query}`,
      timeoutMs: this.timeoutMs,
      // The call carries nothing secret, so a redirect (a proxy in front of the chart repo) is followed.
      followRedirects: true,
    });
    if (outcome.kind === 'timeout') return fail(`no answer within ${this.timeoutMs} ms`);
    if (outcome.kind === 'unreachable') return fail(`unreachable (${outcome.problem})`);
    const { status: httpStatus, durationMs } = outcome;
    this.logger.debug({ call, status: httpStatus, durationMs }, 'chart repo status call');
    if (outcome.kind === 'too_large' || outcome.kind === 'too_many_values') {
      return fail(`HTTP ${httpStatus} with ${unreadBody(outcome)}`);
    }

    const { body, isJson } = outcome;
    const message = isJson && isRecord(body) ? upstreamMessage(body.message) : '';
    if (!outcome.ok) return fail(`HTTP ${httpStatus}${message ? `: ${message}` : ''}`);
    if (!isJson) return fail(`HTTP ${httpStatus} with a body that is not JSON`);
    if (!isRecord(body) || typeof body.success !== 'boolean') {
      return fail('the answer is not the {success, message, data} envelope');
    }
    if (!body.success) return fail(`the chart repo refused: ${message || 'success is false, without a message'}`);
    if (!isRecord(body.data)) return fail('the answer has no status object in data');
    // Read leniently, `"apps": "nope"` was an empty, healthy answer that replaced the last good data.
    const shape = shapeProblem(body.data);
    if (shape) return fail(`the status is not shaped as one: ${shape}`);

    try {
      return { ok: true, answer: readAnswer(body.data, pair), userId };
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
  if (!kept) return { reachable: false, lastError, lastUpdate: null, ...aggregate([]) };
  return { ...kept, reachable: false, lastError };
}

/** Of two kept statuses, the one fetched last; one never fetched (no lastUpdate) holds no data to keep. */
function newer(a: ChartRepoStatus | null, b: ChartRepoStatus | null): ChartRepoStatus | null {
  const fetched = [a, b].filter((status): status is ChartRepoStatus => status?.lastUpdate instanceof Date);
  return fetched.sort((x, y) => (y.lastUpdate as Date).getTime() - (x.lastUpdate as Date).getTime())[0] ?? null;
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
  return excerpt(firstLine, MAX_UPSTREAM_MESSAGE);
}

function describeFailures(failures: { call: string; problem: string }[], total: number): string {
  const listed = failures.slice(0, MAX_LISTED_FAILURES).map(({ call, problem }) => `${call}: ${problem}`);
  const rest = failures.length - listed.length;
  if (rest > 0) listed.push(`and ${rest} more`);
  const calls = total === 1 ? 'call' : 'calls';
  return `${failures.length} of ${total} chart repo status ${calls} failed: ${listed.join('; ')}`;
}
