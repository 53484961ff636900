import { excerpt } from '../../domain/text-length.js';
import { isRecord } from '../../platform/json.js';
import { redactSecrets } from '../../platform/redact.js';
import { parseRfc3339Time } from '../../platform/rfc3339.js';

/**
 * Reading one field of a chart repo answer into a bounded, well-typed value. The chart repo is an
 * external service: whatever it sends, what comes out fits its GraphQL type (an Int is a 32-bit
 * integer, a Float finite, a string of bounded length) or is null.
 */

/** Names and ids (app, image, task, node …): longer than this is not a name but garbage, and the item is dropped. */
export const MAX_IDENTIFIER_LENGTH = 512;

/** Free text (error messages, statuses): cut here, with an ellipsis, so one upstream stack trace cannot bloat every snapshot. */
export const MAX_TEXT_LENGTH = 2_000;

/** GraphQL's Int is 32 bits; a counter beyond it would fail the whole response when serialised. */
const MAX_INT = 2 ** 31 - 1;

/** Keys of a free-form map (system components, resource usage) kept as JSON; the chart repo sends a handful. */
const MAX_MAP_KEYS = 200;

/** A non-empty string of bounded length, or null (missing, wrong type, empty or too long). */
export function identifier(value: unknown): string | null {
  return typeof value === 'string' && value !== '' && value.length <= MAX_IDENTIFIER_LENGTH ? value : null;
}

/** A string, cut to MAX_TEXT_LENGTH; null when missing, of another type or empty. */
export function text(value: unknown): string | null {
  if (typeof value !== 'string' || value === '') return null;
  return excerpt(value, MAX_TEXT_LENGTH);
}

/**
 * Upstream error text (an app's, an image's, a task's error): redacted as every upstream text is
 * where it enters (platform/redact.ts), then cut as `text`. Served verbatim, an error quoting a
 * token reached its user, every admin and the snapshot.
 */
export function errorText(value: unknown): string | null {
  return typeof value === 'string' ? text(redactSecrets(value)) : null;
}

/** A count or index: a finite number, truncated and clamped to 0..2^31-1; null otherwise. */
export function count(value: unknown): number | null {
  if (typeof value !== 'number' || !Number.isFinite(value)) return null;
  return Math.min(Math.max(Math.trunc(value), 0), MAX_INT);
}

/** A size in bytes: a finite non-negative number, at most 2^53-1; null otherwise. */
export function size(value: unknown): number | null {
  if (typeof value !== 'number' || !Number.isFinite(value) || value < 0) return null;
  return Math.min(value, Number.MAX_SAFE_INTEGER);
}

/** A progress percentage, clamped to 0..100; null when not a finite number. */
export function percent(value: unknown): number | null {
  if (typeof value !== 'number' || !Number.isFinite(value)) return null;
  return Math.min(Math.max(value, 0), 100);
}

/** An RFC 3339 time as a Date; null when absent, unparseable or Go's zero time (year 1, its "never"). */
export function time(value: unknown): Date | null {
  const parsed = typeof value === 'string' && value.length <= 64 ? parseRfc3339Time(value) : null;
  return parsed && parsed.getUTCFullYear() > 1 ? parsed : null;
}

/** A free-form map kept as JSON, when it is an object of reasonable size. */
export function map(value: unknown): Record<string, unknown> | null {
  return isRecord(value) && Object.keys(value).length <= MAX_MAP_KEYS ? value : null;
}

/** Counts what the typed status leaves out of one answer. */
export interface Drops {
  dropped: number;
}

/**
 * The entries of a list read with `read`, at most `max` of them: entries that are not objects, that
 * `read` refuses (null) and those beyond `max` are counted in `drops` and left out.
 */
export function list<T>(
  value: unknown,
  max: number,
  drops: Drops,
  read: (entry: Record<string, unknown>) => T | null,
): T[] {
  if (!Array.isArray(value)) return [];
  const items: T[] = [];
  for (const entry of value) {
    const item = items.length < max && isRecord(entry) ? read(entry) : null;
    if (item === null) drops.dropped++;
    else items.push(item);
  }
  return items;
}

/** Strings of a list (names of images), each an identifier, at most `max`; the others are left out. */
export function identifiers(value: unknown, max: number): string[] {
  if (!Array.isArray(value)) return [];
  const items: string[] = [];
  for (const entry of value) {
    const name = identifier(entry);
    if (name !== null && items.length < max) items.push(name);
  }
  return items;
}
