import { isRecord } from '../../platform/json.js';
import { parseRfc3339Time } from '../../platform/rfc3339.js';
import type { ChartRepoStatus } from './port.js';

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
}

/** The `data` of one status answer, normalised (see port.ts). */
export function readAnswer(data: Record<string, unknown>): Answer {
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

/** The answers of several calls as one status: lists concatenated, hydrator counters summed. */
export function aggregate(answers: Answer[]): Pick<ChartRepoStatus, 'system' | 'apps' | 'images' | 'tasks'> {
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
 * already in milliseconds, as milliseconds; anything else is null. Go marshals a time.Duration as
 * integer nanoseconds, but the collector we re-model reads numbers as milliseconds, so that is the
 * contract kept here.
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
