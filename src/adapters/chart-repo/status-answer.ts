import { isRecord } from '../../platform/json.js';
import { parseRfc3339Time } from '../../platform/rfc3339.js';
import { goDurationMs } from './go-duration.js';
import type { ChartRepoPair, ChartRepoStatus } from './port.js';
import { belongsToPair, parseAnswer } from './status-parse.js';
import type { ChartRepoHydrator, ChartRepoTypedStatus } from './status-types.js';

/**
 * Reading the chart repo's status answers: each call's `data` normalised on its own, then the
 * answers of several calls combined into one status.
 */

const HYDRATOR_COUNTERS = ['queue_length', 'active_tasks', 'completed_tasks', 'failed_tasks'] as const;
const HYDRATOR_LISTS = ['tasks', 'recent_failed'] as const;

/** Every field of the status that is a Go time.Time, wherever it is nested. */
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
export interface Answer {
  system: Record<string, unknown> | null;
  apps: unknown[];
  images: unknown[];
  hydrator: Record<string, unknown> | null;
  imageAnalyzer: Record<string, unknown> | null;
  typed: ChartRepoTypedStatus;
}

/**
 * The `data` of one status answer, normalised (see port.ts) and read into the typed status (see
 * status-parse.ts); `pair` is whom the call was made for, null for the call for all users. The raw
 * blocks leave out the app states and hydrator tasks of another user or source, as the typed
 * status does (belongsToPair): the deprecated fields must not show them either.
 */
export function readAnswer(data: Record<string, unknown>, pair: ChartRepoPair | null = null): Answer {
  const tasks = isRecord(data.tasks) ? data.tasks : {};
  const system = nonEmpty(data.system);
  const imageAnalyzer = nonEmpty(tasks.image_analyzer);
  const own = (items: unknown) => records(items).filter((item) => belongsToPair(item, pair));
  return {
    system: system && normalised(system),
    apps: own(data.apps).map(normalised),
    images: records(data.images).map(normalised),
    hydrator: isRecord(tasks.hydrator) ? normalised(ownTasks(tasks.hydrator, own)) : null,
    imageAnalyzer: imageAnalyzer && {
      ...normalised(imageAnalyzer),
      // Read as the typed averageAnalysisTimeMs is: a number is Go's integer nanoseconds.
      average_analysis_time: goDurationMs(imageAnalyzer.average_analysis_time),
    },
    typed: parseAnswer(data, pair),
  };
}

/**
 * Why `data` is no status answer, or null: a top-level block of the wrong kind (`"apps": "nope"`).
 * Absent or null blocks are none (Go writes a nil slice as null); wrong items within a block are
 * dropped one by one instead, and counted (status-parse.ts).
 */
export function shapeProblem(data: Record<string, unknown>): string | null {
  const tasks = isRecord(data.tasks) ? data.tasks : {};
  const blocks = [
    ['apps', data.apps, 'a list'],
    ['images', data.images, 'a list'],
    ['system', data.system, 'an object'],
    ['tasks', data.tasks, 'an object'],
    ['tasks.hydrator', tasks.hydrator, 'an object'],
    ['tasks.image_analyzer', tasks.image_analyzer, 'an object'],
  ] as const;
  const problems: string[] = [];
  for (const [name, value, kind] of blocks) {
    const fits = value == null || (kind === 'a list' ? Array.isArray(value) : isRecord(value));
    if (!fits) problems.push(`data.${name} is not ${kind}`);
  }
  return problems.length > 0 ? problems.join(', ') : null;
}

/** The hydrator block with its task lists cut down to `own`; a list that is not one stays as sent. */
function ownTasks(
  hydrator: Record<string, unknown>,
  own: (items: unknown) => Record<string, unknown>[],
): Record<string, unknown> {
  const copy = { ...hydrator };
  for (const field of HYDRATOR_LISTS) if (Array.isArray(copy[field])) copy[field] = own(copy[field]);
  return copy;
}

/** The fields of a status that the answers give. */
export type AggregatedStatus = Pick<ChartRepoStatus, 'system' | 'apps' | 'images' | 'tasks'> & ChartRepoTypedStatus;

/** The answers of several calls as one status: lists concatenated, hydrator counters summed. */
export function aggregate(answers: Answer[]): AggregatedStatus {
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
  return { system, apps, images, tasks, ...aggregateTyped(answers.map((answer) => answer.typed)) };
}

/**
 * Most app or image states one status holds over all its calls: each answer is bounded already
 * (status-parse.ts), this bounds their sum for a cluster of many users, far beyond a real one.
 */
const MAX_AGGREGATED_ITEMS = 20_000;

/** The typed side of aggregate, by the same rules as the raw blocks. */
function aggregateTyped(answers: ChartRepoTypedStatus[]): ChartRepoTypedStatus {
  const drops = { dropped: 0 };
  const bounded = <T>(into: T[], items: T[]) => {
    const room = Math.max(MAX_AGGREGATED_ITEMS - into.length, 0);
    into.push(...items.slice(0, room));
    drops.dropped += Math.max(items.length - room, 0);
  };
  const typed: ChartRepoTypedStatus = {
    systemStatus: null,
    appStates: [],
    imageStates: [],
    queues: null,
    droppedItems: 0,
  };
  let hydrator: ChartRepoHydrator | null = null;
  for (const answer of answers) {
    typed.systemStatus ??= answer.systemStatus;
    bounded(typed.appStates, answer.appStates);
    bounded(typed.imageStates, answer.imageStates);
    drops.dropped += answer.droppedItems;
    const next = answer.queues?.hydrator;
    // The first one copied: the answers are shared by the status of all users and those of each user.
    if (next) {
      hydrator = hydrator
        ? mergeTypedHydrators(hydrator, next, bounded)
        : { ...next, tasks: [...next.tasks], recentFailed: [...next.recentFailed] };
    }
    const imageAnalyzer = answer.queues?.imageAnalyzer ?? typed.queues?.imageAnalyzer ?? null;
    if (hydrator || imageAnalyzer) typed.queues = { hydrator, imageAnalyzer };
  }
  typed.droppedItems = drops.dropped;
  return typed;
}

function mergeTypedHydrators(
  into: ChartRepoHydrator,
  next: ChartRepoHydrator,
  bounded: <T>(into: T[], items: T[]) => void,
): ChartRepoHydrator {
  // `into` is aggregateTyped's own copy, so its lists grow in place.
  const { tasks, recentFailed } = into;
  bounded(tasks, next.tasks);
  bounded(recentFailed, next.recentFailed);
  // Sums clamped to GraphQL's 32-bit Int, like every counter read.
  const sum = (a: number, b: number) => Math.min(a + b, 2 ** 31 - 1);
  return {
    queueLength: sum(into.queueLength, next.queueLength),
    activeTasks: sum(into.activeTasks, next.activeTasks),
    completedTasks: sum(into.completedTasks, next.completedTasks),
    failedTasks: sum(into.failedTasks, next.failedTasks),
    // One worker pool answers every call (see mergeHydrators): the first non-zero report is its size.
    workerCount: into.workerCount === 0 ? next.workerCount : into.workerCount,
    tasks,
    recentFailed,
  };
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
