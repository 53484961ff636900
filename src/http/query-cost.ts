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
import { DEFAULT_PAGE_SIZE } from '../services/pagination.js';
import { perOperation } from './per-operation.js';

/**
 * The cost of an operation: how many field values its answer can hold at most. Each field counts
 * 1, and a field inside a page (a field with a `first` or `last` argument) counts once per item the
 * page may hold: its `first`/`last` as the client gave it, literally or as a variable, else the
 * argument's default, else DEFAULT_PAGE_SIZE; never more than MAX_PAGE_SIZE, which each page
 * refuses beyond anyway. Pages inside pages multiply. An operation over `maxCost` does not run:
 * `LIMIT_EXCEEDED` (HTTP 400), on every transport.
 *
 * Why not graphql-armor's cost limit, which this replaces: it is a validation rule, so it never
 * sees variables. It multiplied by a page size written in the document and ignored one sent as a
 * variable: the README's own `apps(first: 100)` example was refused while fifteen aliased
 * `apps(first: $n) { … tasks(first: $n) }` (150,000 tasks) ran. Checked at execution, with the
 * variables, both are judged alike. The plan of each operation is worked out once (perOperation);
 * a run only multiplies its page sizes.
 */

/** Where a page's size comes from. */
type PageSize = { literal: number } | { variable: string; otherwise: number };

/** The cost of a selection: its own fields, plus each page's items times the cost of one. */
interface CostPlan {
  fields: number;
  pages: { size: PageSize; item: CostPlan }[];
}

const PAGE_ARGUMENTS = new Set(['first', 'last']);

function intOf(value: ValueNode | undefined): number | null {
  return value?.kind === Kind.INT ? Number(value.value) : null;
}

class PlanBuilder {
  constructor(
    private readonly schema: GraphQLSchema,
    private readonly document: ExecutionArgs['document'],
    private readonly defaults: Map<string, number | null>,
  ) {}

  selection(set: SelectionSetNode, type: GraphQLCompositeType, plan: CostPlan, seen: Set<string>): void {
    for (const selection of set.selections) {
      if (selection.kind === Kind.FIELD) this.field(selection, type, plan, seen);
      else if (selection.kind === Kind.INLINE_FRAGMENT) {
        const on = selection.typeCondition ? this.schema.getType(selection.typeCondition.name.value) : type;
        this.selection(selection.selectionSet, isCompositeType(on) ? on : type, plan, seen);
      } else {
        const name = selection.name.value;
        if (seen.has(name)) continue; // validation refuses cycles; each spread once per path is enough
        const fragment = this.document.definitions.find(
          (definition) => definition.kind === Kind.FRAGMENT_DEFINITION && definition.name.value === name,
        );
        if (fragment?.kind !== Kind.FRAGMENT_DEFINITION) continue;
        const on = this.schema.getType(fragment.typeCondition.name.value);
        this.selection(fragment.selectionSet, isCompositeType(on) ? on : type, plan, new Set(seen).add(name));
      }
    }
  }

  private field(node: FieldNode, type: GraphQLCompositeType, plan: CostPlan, seen: Set<string>): void {
    plan.fields += 1;
    if (!node.selectionSet) return;
    const definition = 'getFields' in type ? type.getFields()[node.name.value] : undefined; // not a union's
    const inner = definition ? getNamedType(definition.type) : undefined;
    const innerType = isCompositeType(inner) ? inner : type;
    const pageArgument = definition?.args.find((argument) => PAGE_ARGUMENTS.has(argument.name));
    if (!pageArgument) {
      this.selection(node.selectionSet, innerType, plan, seen);
      return;
    }
    const item: CostPlan = { fields: 0, pages: [] };
    this.selection(node.selectionSet, innerType, item, seen);
    plan.pages.push({ size: this.pageSize(node, pageArgument.defaultValue), item });
  }

  /** The larger of `first` and `last` as given; the argument's default, or DEFAULT_PAGE_SIZE, when neither is. */
  private pageSize(node: FieldNode, argumentDefault: unknown): PageSize {
    const otherwise = typeof argumentDefault === 'number' ? argumentDefault : DEFAULT_PAGE_SIZE;
    const given = (node.arguments ?? []).filter((argument) => PAGE_ARGUMENTS.has(argument.name.value));
    for (const { value } of given) {
      if (value.kind === Kind.VARIABLE) {
        const declared = this.defaults.get(value.name.value);
        return { variable: value.name.value, otherwise: declared ?? otherwise };
      }
    }
    const literals = given.map(({ value }) => intOf(value)).filter((size): size is number => size !== null);
    return { literal: literals.length ? Math.max(...literals) : otherwise };
  }
}

/** The plan of an operation, or null when it has none to cost (an unknown operation name). */
function planOf({ schema, document, operationName }: Pick<ExecutionArgs, 'schema' | 'document' | 'operationName'>) {
  const operation = getOperationAST(document, operationName);
  const root = operation && schema.getRootType(operation.operation);
  if (!operation || !root) return null;
  const defaults = new Map(
    (operation.variableDefinitions ?? []).map((definition) => [
      definition.variable.name.value,
      intOf(definition.defaultValue),
    ]),
  );
  const plan: CostPlan = { fields: 0, pages: [] };
  new PlanBuilder(schema, document, defaults).selection(operation.selectionSet, root, plan, new Set());
  return plan;
}

function costOf(plan: CostPlan, variables: Record<string, unknown>, maxPageSize: number): number {
  let cost = plan.fields;
  for (const { size, item } of plan.pages) {
    // A variable that is not a size (null, or one coercion will refuse) counts as not given.
    const given = 'literal' in size ? size.literal : variables[size.variable];
    const items = typeof given === 'number' && given >= 0 ? given : 'otherwise' in size ? size.otherwise : 0;
    cost += Math.min(items, maxPageSize) * costOf(item, variables, maxPageSize);
  }
  return cost;
}

/** The envelop/Yoga plugin that refuses operations costing more than `maxCost` (MAX_QUERY_COST). */
export function useQueryCost(limit: { maxCost: number; maxPageSize: number }): Plugin {
  const plans = perOperation(planOf);
  const refusal = (args: ExecutionArgs) => {
    const plan = plans(args);
    if (!plan) return null;
    const cost = costOf(plan, (args.variableValues ?? {}) as Record<string, unknown>, limit.maxPageSize);
    if (cost <= limit.maxCost) return null;
    const message =
      `Query cost ${cost} exceeds the limit of ${limit.maxCost} (MAX_QUERY_COST): each field counts once per ` +
      `item of the pages around it (first/last, or ${DEFAULT_PAGE_SIZE} when not given). Ask for smaller pages or fewer fields.`;
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
