import { checkIdArgument } from './errors.js';

/**
 * Declarative filters: each filter argument (TaskFilter, AppFilter, SnapshotFilter …) is described
 * once, as a table from its fields to rules on the row's columns. From that one table come both the
 * Prisma `where` of a list query and the in-memory predicate of a subscription or of the runtime
 * store, so the two cannot drift apart (test/filters.test.ts runs both over the same rows).
 *
 * Common to every rule: a field that is null, undefined, empty ('') or an empty list constrains
 * nothing (the test is for any falsy value, so a rule on a boolean or a number, which no filter
 * has yet, would need its own); the given fields must all hold. Comparisons are exact
 * (case-sensitive). A field naming objects by id (`equalsId`, `oneOfIds`) is never empty: `compile`
 * refuses an empty or over-long id (checkIdArgument), as every argument naming an object does;
 * `catalog(sourceId: "")` listed every source's apps.
 *
 * A rule on a *derived* column reads `row.derived[column]`: a value computed from the row (an
 * app's stage and health), which SQL cannot filter on. Such rules are left out of `where`; the
 * caller applies them in memory (see `hasDerived`).
 */

import { storedBound, type TimeInput } from './instant.js';

type Column<T> = Extract<keyof T, string>;

/** A rule on a column the database stores. */
export type StoredRule<Row> = StoredRuleOf<Row> & { readonly derived?: false };

type StoredRuleOf<Row> =
  /** `column` equals the field's value; an id of at most `max` characters when `max` is set. */
  | { readonly op: 'equals'; readonly column: Column<Row>; readonly max?: number }
  /** `column` is one of the field's values; ids of at most `max` characters when `max` is set. */
  | { readonly op: 'oneOf'; readonly column: Column<Row>; readonly max?: number }
  /** `column` is at or after the field's time. */
  | { readonly op: 'atOrAfter'; readonly column: Column<Row> }
  /** `column` is at or before the field's time. */
  | { readonly op: 'atOrBefore'; readonly column: Column<Row> }
  /**
   * `column` contains `pattern(value)`, character for character: `%`, `_` and `\` are themselves
   * (db/list-sql.ts escapes them). An empty pattern constrains nothing. The column and the pattern
   * must be folded alike, letter case included (SQLite's LIKE ignores ASCII case, PostgreSQL's
   * does not): the catalogue's both go through domain/search-fold.ts. It has no Prisma
   * form (`where` refuses it): Prisma's `contains` does not escape, and has no ESCAPE to ask for.
   */
  | { readonly op: 'contains'; readonly column: Column<Row>; readonly pattern: (value: string) => string }
  /** Some row of the `relation` list has `column` equal to the field's value. */
  | { readonly op: 'some'; readonly relation: Column<Row>; readonly column: string };

/** A rule on a value derived from the row, read from `row.derived` (never SQL). */
export type DerivedRule<Row> = Row extends { derived: infer D }
  ? { readonly op: 'equals' | 'oneOf'; readonly column: Column<D>; readonly derived: true }
  : never;

export type FieldRule<Row> = StoredRule<Row> | DerivedRule<Row>;

/** One rule for every field of `Filter` (fields a filter leaves to its service, like userId, are omitted from it). */
export type FilterRules<Filter, Row> = { readonly [Field in keyof Filter]-?: FieldRule<Row> };

export const equals = <C extends string>(column: C) => ({ op: 'equals', column }) as const;
export const oneOf = <C extends string>(column: C) => ({ op: 'oneOf', column }) as const;
/** `equals`, of a field naming one object by an id of at most `max` characters (never empty). */
export const equalsId = <C extends string>(column: C, max: number) => ({ op: 'equals', column, max }) as const;
/** `oneOf`, of a list of ids of at most `max` characters (none of them empty). */
export const oneOfIds = <C extends string>(column: C, max: number) => ({ op: 'oneOf', column, max }) as const;
export const atOrAfter = <C extends string>(column: C) => ({ op: 'atOrAfter', column }) as const;
export const atOrBefore = <C extends string>(column: C) => ({ op: 'atOrBefore', column }) as const;
export const contains = <C extends string>(column: C, pattern: (value: string) => string) =>
  ({ op: 'contains', column, pattern }) as const;
export const some = <R extends string>(relation: R, column: string) => ({ op: 'some', relation, column }) as const;
/** The rule applied to `row.derived` instead of the stored row. */
export const derived = <Rule extends { op: 'equals' | 'oneOf'; column: string }>(rule: Rule) =>
  ({ ...rule, derived: true }) as const;

type Op = StoredRuleOf<unknown>['op'];

/**
 * One active condition of a compiled filter. Every check has the same shape (one hidden class),
 * so the matcher's property reads stay monomorphic.
 */
interface Check {
  readonly op: Op;
  readonly derived: boolean;
  /** For `some`, the column in the related rows. */
  readonly column: string;
  /** For `some`, the list on the row; otherwise ''. */
  readonly relation: string;
  /** equals/some: the value; oneOf: a Set; atOrAfter/atOrBefore: the time; contains: the pattern. */
  readonly value: unknown;
}

/** Any rule, its columns no longer tied to a row type. */
type AnyRule = StoredRuleOf<Record<string, unknown>> & { readonly derived?: boolean };

function toCheck(rule: AnyRule, value: unknown): Check | null {
  const base = { op: rule.op, derived: rule.derived === true, column: rule.column, relation: '', value };
  switch (rule.op) {
    case 'oneOf':
      return Array.isArray(value) && value.length > 0 ? { ...base, value: new Set(value) } : null;
    case 'contains': {
      const pattern = typeof value === 'string' && value ? rule.pattern(value) : '';
      return pattern ? { ...base, value: pattern } : null;
    }
    case 'some':
      return value ? { ...base, relation: rule.relation } : null;
    case 'atOrAfter':
    case 'atOrBefore':
      return value ? { ...base, value: storedBound(rule.op, value as TimeInput) } : null;
    default:
      return value ? base : null;
  }
}

function toWhere(checks: readonly Check[]): Record<string, unknown> {
  const where: Record<string, unknown> = {};
  for (const check of checks) {
    if (check.derived) continue;
    const { column, value } = check;
    const range = where[column] as object | undefined;
    switch (check.op) {
      case 'equals':
        where[column] = value;
        break;
      case 'oneOf':
        // Distinct values: an IN list is never longer than the enum, however long the filter's list.
        where[column] = { in: [...(value as Set<unknown>)] };
        break;
      case 'atOrAfter':
        where[column] = { ...range, gte: value };
        break;
      case 'atOrBefore':
        where[column] = { ...range, lte: value };
        break;
      case 'contains':
        // Dropped, it would widen the list; as Prisma's `contains`, `%` in a search matched everything.
        throw new Error(`no Prisma form for a search of ${column}: list it through db/list-sql.ts`);
      case 'some':
        where[check.relation] = { some: { [column]: value } };
        break;
    }
  }
  return where;
}

/**
 * An equals or oneOf condition as the values it accepts: what an in-memory index can look up
 * (the runtime store's), instead of running the predicate over every row.
 */
export interface Lookup {
  readonly column: string;
  readonly derived: boolean;
  /** Distinct; a row matches the condition when its column holds one of them. */
  readonly values: readonly unknown[];
}

function toLookups(checks: readonly Check[]): Lookup[] {
  const lookups: Lookup[] = [];
  for (const { op, column, derived, value } of checks) {
    if (op === 'equals') lookups.push({ column, derived, values: [value] });
    if (op === 'oneOf') lookups.push({ column, derived, values: [...(value as Set<unknown>)] });
  }
  return lookups;
}

/**
 * A set condition on a stored column, for a SQL form of the filter (db/list-sql.ts): `values` are
 * oneOf's distinct values, `value` the others' (a time, a LIKE pattern, `some`'s value).
 */
export interface StoredCondition {
  readonly op: Op;
  readonly column: string;
  /** For `some`, the list on the row; otherwise ''. */
  readonly relation: string;
  readonly value: unknown;
}

/** The owner condition a service adds to a list's filter (its userScope: undefined is everyone's). */
export function ownerCondition(userId: string | undefined): StoredCondition[] {
  return userId === undefined ? [] : [{ op: 'equals', column: 'userId', relation: '', value: userId }];
}

function toStored(checks: readonly Check[]): StoredCondition[] {
  return checks
    .filter((check) => !check.derived)
    .map(({ op, column, relation, value }) => ({
      op,
      column,
      relation,
      value: op === 'oneOf' ? [...(value as Set<unknown>)] : value,
    }));
}

/** A filter's value, compiled once: its Prisma `where` and its predicate over rows. */
export class CompiledFilter<Row, Where = Record<string, unknown>> {
  private whereForm: Where | undefined;
  /** The same conditions, for SQL written by hand. */
  readonly stored: readonly StoredCondition[];
  /** Whether some condition is on a derived value (so it is not in `where`). */
  readonly hasDerived: boolean;
  /** The set equals and oneOf conditions, by the same rules as `matches` (a row must satisfy all). */
  readonly lookups: readonly Lookup[];
  /** Whether no condition is set: every row matches. */
  readonly matchesAll: boolean;

  constructor(private readonly checks: readonly Check[]) {
    this.stored = toStored(checks);
    this.hasDerived = checks.some((check) => check.derived);
    this.lookups = toLookups(checks);
    this.matchesAll = checks.length === 0;
  }

  /**
   * The conditions on stored columns, as a Prisma where-object (`{}` when there are none); built
   * when first asked for. A `contains` condition has none: asked for, it throws.
   */
  get where(): Where {
    this.whereForm ??= toWhere(this.checks) as Where;
    return this.whereForm;
  }

  /** Whether the row satisfies every condition. Allocates nothing. */
  matches(row: Row): boolean {
    const checks = this.checks;
    for (let i = 0; i < checks.length; i += 1) {
      const check = checks[i] as Check;
      const source = (check.derived ? (row as { derived: unknown }).derived : row) as Record<string, unknown>;
      switch (check.op) {
        case 'equals':
          if (source[check.column] !== check.value) return false;
          break;
        case 'oneOf':
          if (!(check.value as Set<unknown>).has(source[check.column])) return false;
          break;
        case 'atOrAfter':
          if (!((source[check.column] as Date) >= (check.value as Date))) return false;
          break;
        case 'atOrBefore':
          if (!((source[check.column] as Date) <= (check.value as Date))) return false;
          break;
        case 'contains': {
          const text = source[check.column];
          if (typeof text !== 'string' || !text.includes(check.value as string)) return false;
          break;
        }
        case 'some':
          if (!someEquals(source[check.relation] as readonly Record<string, unknown>[], check.column, check.value)) {
            return false;
          }
          break;
      }
    }
    return true;
  }

  /**
   * The conditions on these columns only: for what carries just those (a change event's key,
   * the key of a removed app) before the whole row is read.
   */
  only<C extends Column<Row>>(columns: readonly C[]): CompiledFilter<Pick<Row, C>, Where> {
    const wanted: readonly string[] = columns;
    return new CompiledFilter(
      this.checks.filter((check) => !check.derived && wanted.includes(check.relation || check.column)),
    );
  }
}

function someEquals(related: readonly Record<string, unknown>[] | undefined, column: string, value: unknown): boolean {
  if (!related) return false;
  for (const row of related) if (row[column] === value) return true;
  return false;
}

/** Refuses an id field's value (a list's items one by one) that is empty or longer than `max`. */
function checkIds(path: string, value: unknown, max: number): void {
  if (typeof value === 'string') checkIdArgument(path, value, max);
  if (!Array.isArray(value)) return;
  for (const [index, item] of value.entries()) checkIdArgument(`${path}.${index}`, item as string, max);
}

/** The table of one filter's rules; `compile` a value of the filter once, then match many rows. */
export class FilterDefinition<Filter, Row, Where = Record<string, unknown>> {
  private readonly rules: readonly (readonly [string, AnyRule])[];

  constructor(
    rules: FilterRules<Filter, Row>,
    private readonly argument: string | null,
  ) {
    this.rules = Object.entries(rules) as [string, AnyRule][];
  }

  /** The filter's conditions; throws ValidationError for an id field that is empty or too long. */
  compile(filter: Filter): CompiledFilter<Row, Where> {
    const checks: Check[] = [];
    for (const [field, rule] of this.rules) {
      const value = (filter as Record<string, unknown>)[field];
      if ('max' in rule && rule.max !== undefined) {
        checkIds(this.argument ? `${this.argument}.${field}` : field, value, rule.max);
      }
      const check = toCheck(rule, value);
      if (check) checks.push(check);
    }
    return new CompiledFilter(checks);
  }
}

/**
 * Defines a filter: `Filter` is the argument's type (less the fields its service handles itself),
 * `Row` what its predicate reads, `Where` the Prisma where-input its `where` is. `argument` is the
 * argument holding its fields, as a refusal names them (`filter.sourceId`); null when the fields
 * are arguments of their own (`catalog(sourceId:)`).
 */
export function defineFilter<Filter, Row, Where = Record<string, unknown>>(
  rules: FilterRules<Filter, Row>,
  argument: string | null = 'filter',
): FilterDefinition<Filter, Row, Where> {
  return new FilterDefinition(rules, argument);
}
