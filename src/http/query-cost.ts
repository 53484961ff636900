import {
  type ExecutionArgs,
  type FieldNode,
  type GraphQLCompositeType,
  GraphQLError,
  type GraphQLSchema,
  getNamedType,
  getOperationAST,
  isCompositeType,
  Kind,
  type SelectionSetNode,
  type ValueNode,
} from 'graphql';
import type { Plugin } from 'graphql-yoga';
import { ASSUMED_LIST_SIZE, COST_WEIGHT, type ListLimits } from '../schema/connections.js';
import { DEFAULT_PAGE_SIZE } from '../services/pagination.js';
import { perOperation } from './per-operation.js';

/**
 * The cost of an operation: how many field values its answer can hold at most. Each field counts 1,
 * or the weight its definition declares when its value can be large (`costWeight`, see
 * schema/connections.ts: a catalogue entry counts 1,000), and a field inside a page (a field with a
 * `first` or `last` argument) counts once per item the page may hold: its `first`/`last` as the
 * client gave it, literally or as a variable, else the argument's default, else DEFAULT_PAGE_SIZE;
 * never more than MAX_PAGE_SIZE, which each page refuses beyond anyway. A list without pages that
 * can be long (a snapshot's apps and tasks) counts as the size its field declares
 * (`assumedListSize`, see schema/connections.ts: a number, or a configured limit such as MAX_WEBHOOKS
 * for the list of webhooks), other lists as one item. Pages inside pages, and
 * inside such lists, multiply. An operation over `maxCost` does not run:
 * `LIMIT_EXCEEDED` (HTTP 400), on every transport.
 *
 * Why not graphql-armor's cost limit, which this replaces: it is a validation rule, so it never
 * sees variables. It multiplied by a page size written in the document and ignored one sent as a
 * variable: the README's own `apps(first: 100)` example was refused while fifteen aliased
 * `apps(first: $n) { … tasks(first: $n) }` (150,000 tasks) ran. Checked at execution, with the
 * variables, both are judged alike. The plan of each operation is worked out once (perOperation);
 * a run only multiplies its page sizes.
 */

/**
 * Where a page's size comes from: its `first` and `last` as written (numbers, and variables with
 * their declared defaults); the larger of those given counts, else `otherwise` (the argument's
 * default, or DEFAULT_PAGE_SIZE): a page reads `first ?? last`, so `first: $unset, last: 100` is 100.
 */
interface PageSize {
  literals: number[];
  variables: { name: string; declared: number | null }[];
  otherwise: number;
}

/**
 * The cost of a selection: its own fields, each named fragment it spreads, and each page's items
 * times the cost of one. A named fragment has one plan, however often it is spread: copied per
 * spread, fragments spreading fragments many times each grew the plan exponentially (a 2 KB
 * document held the event loop for 19 s; a slightly wider one ran the process out of memory).
 */
interface CostPlan {
  fields: number;
  fragments: CostPlan[];
  /** Pages, and lists of a declared size (a number: never capped by MAX_PAGE_SIZE, no page refuses beyond). */
  pages: { size: PageSize | number; item: CostPlan }[];
}

const PAGE_ARGUMENTS = new Set(['first', 'last']);

const emptyPlan = (): CostPlan => ({ fields: 0, fragments: [], pages: [] });

function intOf(value: ValueNode | undefined): number | null {
  return value?.kind === Kind.INT ? Number(value.value) : null;
}

class PlanBuilder {
  /** Each named fragment's plan, built at its first spread. */
  private readonly fragments = new Map<string, CostPlan>();

  constructor(
    private readonly schema: GraphQLSchema,
    private readonly document: ExecutionArgs['document'],
    private readonly defaults: Map<string, number | null>,
    private readonly listLimits: ListLimits,
  ) {}

  selection(set: SelectionSetNode, type: GraphQLCompositeType, plan: CostPlan): void {
    for (const selection of set.selections) {
      if (selection.kind === Kind.FIELD) this.field(selection, type, plan);
      else if (selection.kind === Kind.INLINE_FRAGMENT) {
        const on = selection.typeCondition ? this.schema.getType(selection.typeCondition.name.value) : type;
        this.selection(selection.selectionSet, isCompositeType(on) ? on : type, plan);
      } else {
        plan.fragments.push(this.fragment(selection.name.value));
      }
    }
  }

  private fragment(name: string): CostPlan {
    const known = this.fragments.get(name);
    if (known) return known; // (validation refuses cycles; one would meet its own plan, still empty)
    const plan = emptyPlan();
    this.fragments.set(name, plan);
    const fragment = this.document.definitions.find(
      (definition) => definition.kind === Kind.FRAGMENT_DEFINITION && definition.name.value === name,
    );
    if (fragment?.kind !== Kind.FRAGMENT_DEFINITION) return plan;
    const on = this.schema.getType(fragment.typeCondition.name.value);
    if (isCompositeType(on)) this.selection(fragment.selectionSet, on, plan);
    return plan;
  }

  private field(node: FieldNode, type: GraphQLCompositeType, plan: CostPlan): void {
    const definition = 'getFields' in type ? type.getFields()[node.name.value] : undefined; // not a union's
    const weight = definition?.extensions[COST_WEIGHT];
    plan.fields += typeof weight === 'number' ? weight : 1;
    if (!node.selectionSet) return;
    const inner = definition ? getNamedType(definition.type) : undefined;
    const innerType = isCompositeType(inner) ? inner : type;
    const pageArgument = definition?.args.find((argument) => PAGE_ARGUMENTS.has(argument.name));
    const listSize = this.listSize(definition?.extensions[ASSUMED_LIST_SIZE]);
    if (!pageArgument && listSize === null) {
      this.selection(node.selectionSet, innerType, plan);
      return;
    }
    const item = emptyPlan();
    this.selection(node.selectionSet, innerType, item);
    plan.pages.push({
      size: pageArgument ? this.pageSize(node, pageArgument.defaultValue) : (listSize as number),
      item,
    });
  }

  /** A list's declared size (see assumedListSize): its number, or the configured limit it names. */
  private listSize(declared: unknown): number | null {
    if (typeof declared === 'number') return declared;
    if (typeof declared === 'string' && Object.hasOwn(this.listLimits, declared)) {
      return this.listLimits[declared as keyof ListLimits];
    }
    return null;
  }

  private pageSize(node: FieldNode, argumentDefault: unknown): PageSize {
    const size: PageSize = {
      literals: [],
      variables: [],
      otherwise: typeof argumentDefault === 'number' ? argumentDefault : DEFAULT_PAGE_SIZE,
    };
    for (const { name, value } of node.arguments ?? []) {
      if (!PAGE_ARGUMENTS.has(name.value)) continue;
      if (value.kind === Kind.VARIABLE) {
        size.variables.push({ name: value.name.value, declared: this.defaults.get(value.name.value) ?? null });
      } else {
        // A negative one is refused by its page alone, and must not lower the cost of the others.
        const literal = intOf(value);
        if (literal !== null && literal >= 0) size.literals.push(literal);
      }
    }
    return size;
  }
}

/** The plan of an operation, or null when it has none to cost (an unknown operation name). */
function planOf(
  { schema, document, operationName }: Pick<ExecutionArgs, 'schema' | 'document' | 'operationName'>,
  listLimits: ListLimits,
) {
  const operation = getOperationAST(document, operationName);
  const root = operation && schema.getRootType(operation.operation);
  if (!operation || !root) return null;
  const defaults = new Map(
    (operation.variableDefinitions ?? []).map((definition) => [
      definition.variable.name.value,
      intOf(definition.defaultValue),
    ]),
  );
  const plan = emptyPlan();
  new PlanBuilder(schema, document, defaults, listLimits).selection(operation.selectionSet, root, plan);
  return plan;
}

/** How many items a page holds at most with these variables. */
function itemsOf(size: PageSize | number, variables: Record<string, unknown>, maxPageSize: number): number {
  if (typeof size === 'number') return size;
  const given = [...size.literals];
  for (const { name, declared } of size.variables) {
    // A value that is not a size (null, or one coercion will refuse) counts as not given.
    const value = name in variables ? variables[name] : declared;
    if (typeof value === 'number' && value >= 0) given.push(value);
  }
  return Math.min(given.length ? Math.max(...given) : size.otherwise, maxPageSize);
}

/** The cost of a plan, each shared fragment's worked out once per run. */
function costOf(
  plan: CostPlan,
  variables: Record<string, unknown>,
  maxPageSize: number,
  known = new Map<CostPlan, number>(),
): number {
  const cached = known.get(plan);
  if (cached !== undefined) return cached;
  let cost = plan.fields;
  for (const fragment of plan.fragments) cost += costOf(fragment, variables, maxPageSize, known);
  for (const { size, item } of plan.pages) {
    cost += itemsOf(size, variables, maxPageSize) * costOf(item, variables, maxPageSize, known);
  }
  known.set(plan, cost);
  return cost;
}

/**
 * The envelop/Yoga plugin that refuses operations costing more than `maxCost` (MAX_QUERY_COST).
 * `listLimits` are the configured sizes that lists declared by name count as (assumedListSize).
 */
export function useQueryCost(limit: { maxCost: number; maxPageSize: number; listLimits: ListLimits }): Plugin {
  const plans = perOperation((operation) => planOf(operation, limit.listLimits));
  const refusal = (args: ExecutionArgs) => {
    const plan = plans(args);
    if (!plan) return null;
    const cost = costOf(plan, (args.variableValues ?? {}) as Record<string, unknown>, limit.maxPageSize);
    if (cost <= limit.maxCost) return null;
    const message =
      `Query cost ${cost} exceeds the limit of ${limit.maxCost} (MAX_QUERY_COST): each field counts once per ` +
      `item of the pages around it (first/last, or ${DEFAULT_PAGE_SIZE} when not given) and of the long lists around ` +
      `it (a snapshot's apps and tasks, MAX_WEBHOOKS webhooks), and fields whose values can be large more than once ` +
      `(a catalogue entry 1,000 times). Ask for smaller pages or fewer fields.`;
    return new GraphQLError(message, {
      extensions: { code: 'LIMIT_EXCEEDED', cost, maxCost: limit.maxCost, http: { status: 400 } },
    });
  };
  return {
    onExecute({ args, setResultAndStopExecution }) {
      const refused = refusal(args);
      if (refused) setResultAndStopExecution({ errors: [refused] });
    },
    onSubscribe({ args, setResultAndStopExecution }) {
      const refused = refusal(args);
      if (refused) setResultAndStopExecution({ errors: [refused] });
    },
  };
}
