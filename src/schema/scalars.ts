import { GraphQLError, Kind, type ValueNode } from 'graphql';
import type { TimeInput } from '../domain/instant.js';
import { excerpt } from '../domain/text-length.js';
import { builder } from './builder.js';

/**
 * A client's malformed scalar. graphql-js reports it as a validation error (a literal: as is, so
 * it carries the literal's location) or a variable's coercion error, both with this code.
 */
function invalidInput(message: string, node?: ValueNode): GraphQLError {
  return new GraphQLError(message, { nodes: node ?? null, extensions: { code: 'VALIDATION' } });
}

/** RFC 3339 §5.6 lets `T` and `Z` be written in lower case too. */
const ISO_DATE_TIME =
  /^(\d{4})-(\d{2})-(\d{2})[Tt](\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,9}))?)?(?:[Zz]|([+-])(\d{2}):(\d{2}))$/;

/**
 * The instants both databases store: PostgreSQL's `timestamp` has no year 0 (an ISO year 0000 is
 * refused there, while SQLite would keep it) and JavaScript prints years past 9999 with a sign
 * that is not ISO-8601 any more. Checked on the UTC instant, so `0001-01-01T00:00:00+01:00`
 * (year 0 in UTC) is refused too.
 */
const MIN_TIME = Date.parse('0001-01-01T00:00:00.000Z');
const MAX_TIME = Date.parse('9999-12-31T23:59:59.999Z');
const DAYS_IN_MONTH = [31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];

function daysInMonth(year: number, month: number): number {
  const leap = (year % 4 === 0 && year % 100 !== 0) || year % 400 === 0;
  return month === 2 && leap ? 29 : (DAYS_IN_MONTH[month - 1] ?? 0);
}

function parseDateTime(value: unknown, node?: ValueNode): TimeInput {
  // A malformed value is quoted back, but never at length.
  const shown = JSON.stringify(typeof value === 'string' ? excerpt(value, 64) : value);
  const parts = typeof value === 'string' ? ISO_DATE_TIME.exec(value) : null;
  if (!parts) {
    throw invalidInput(
      `DateTime must be an ISO-8601 string with a time zone, e.g. 2026-01-31T12:00:00Z (got ${shown})`,
      node,
    );
  }
  const [year, month, day, hour, minute, second, , , offsetHour, offsetMinute] = parts
    .slice(1)
    .map((part) => Number(part ?? 0));
  // Date would roll 2026-02-30 over to March 2 and 24:00 to the next day: refuse them instead.
  const valid =
    month !== undefined &&
    month >= 1 &&
    month <= 12 &&
    day !== undefined &&
    day >= 1 &&
    day <= daysInMonth(year ?? 0, month) &&
    (hour ?? 0) <= 23 &&
    (minute ?? 0) <= 59 &&
    (second ?? 0) <= 59 &&
    (offsetHour ?? 0) <= 23 &&
    (offsetMinute ?? 0) <= 59;
  const time = valid ? Date.parse((value as string).toUpperCase()) : Number.NaN;
  if (Number.isNaN(time)) throw invalidInput(`DateTime ${shown} is not a valid date and time`, node);
  // Date.parse keeps the millisecond a finer time falls in; the filters move their bounds from it.
  const finer = /[1-9]/.test(parts[7]?.slice(3) ?? '');
  if (time < MIN_TIME || time > MAX_TIME || (finer && time === MAX_TIME)) {
    throw invalidInput(
      `DateTime ${shown} is out of range: from 0001-01-01T00:00:00Z to 9999-12-31T23:59:59.999Z`,
      node,
    );
  }
  return finer ? { millisecondBefore: new Date(time) } : new Date(time);
}

builder.scalarType('DateTime', {
  description:
    'A point in time, as an ISO-8601 string with a time zone (e.g. 2026-01-31T12:00:00.000Z), from 0001-01-01T00:00:00Z to 9999-12-31T23:59:59.999Z, to the millisecond. In an input `T` and `Z` may be lower case (RFC 3339), and finer digits (up to 9) are taken exactly: times are stored to the millisecond, so `createdAfter: "…00.0009Z"` starts at …00.001.',
  serialize: (value) => (value instanceof Date ? value.toISOString() : new Date(value as string).toISOString()),
  parseValue: parseDateTime,
  parseLiteral: (ast) => parseDateTime(ast.kind === Kind.STRING ? ast.value : undefined, ast),
});

/**
 * How deep a JSON literal may nest here, whatever the configuration: the largest
 * MAX_INPUT_JSON_DEPTH accepts. The configured (smaller) bound is enforced for literals and
 * variables alike by the input-bounds plugin (src/http/input-bounds.ts); this one keeps the
 * recursion below bounded even without it.
 */
const JSON_LITERAL_MAX_DEPTH = 64;

function literalToJson(ast: ValueNode, variables: Record<string, unknown> | null | undefined, depth = 1): unknown {
  if ((ast.kind === Kind.LIST || ast.kind === Kind.OBJECT) && depth > JSON_LITERAL_MAX_DEPTH) {
    throw invalidInput(`JSON is nested more than ${JSON_LITERAL_MAX_DEPTH} levels deep`, ast);
  }
  switch (ast.kind) {
    case Kind.STRING:
    case Kind.BOOLEAN:
      return ast.value;
    case Kind.INT:
    case Kind.FLOAT:
      return Number(ast.value);
    case Kind.NULL:
      return null;
    case Kind.LIST:
      return ast.values.map((item) => literalToJson(item, variables, depth + 1));
    case Kind.OBJECT:
      return Object.fromEntries(
        ast.fields.map((field) => [field.name.value, literalToJson(field.value, variables, depth + 1)]),
      );
    case Kind.VARIABLE:
      return variables?.[ast.name.value];
    default:
      throw invalidInput('JSON literal not supported', ast);
  }
}

builder.scalarType('JSON', {
  description: 'Any JSON value: free-form maps such as task results and catalogue metadata.',
  serialize: (value) => value,
  parseValue: (value) => value,
  parseLiteral: (ast, variables) => literalToJson(ast, variables),
});
