import {
  type DocumentNode,
  type FragmentDefinitionNode,
  type GraphQLSchema,
  getNamedType,
  getOperationAST,
  isObjectType,
  Kind,
  type SelectionSetNode,
} from 'graphql';

/**
 * Which selections of a `runtimeSnapshot` query are computed from the runtime store's content
 * alone, and may so be cached per store revision (snapshot-result-cache.ts). Listed field by field:
 * a field added later is not cached until it is listed here, so a field that reads the catalogue,
 * the database or a loader (App.catalogApp, App.activeTask, Task.app …) never is.
 */
const STORE_FIELDS: Readonly<Record<string, ReadonlySet<string>>> = {
  Query: new Set(['runtimeSnapshot']),
  RuntimeSnapshot: new Set(['sequence', 'generatedAt', 'summary', 'apps', 'tasks', 'components', 'chartRepo']),
  RuntimeSummary: new Set([
    'totalApps',
    'healthyApps',
    'unhealthyApps',
    'appsByStage',
    'totalTasks',
    'pendingTasks',
    'runningTasks',
    'completedTasks',
    'failedTasks',
    'canceledTasks',
    'activeComponents',
  ]),
  StageCount: new Set(['stage', 'count']),
  Component: new Set(['name', 'healthy', 'state', 'message', 'lastCheck', 'metrics']),
  // stage and health: a runtime app carries them (`derived`), answered without a loader.
  App: new Set([
    'id',
    'userId',
    'sourceId',
    'appName',
    'stage',
    'health',
    'installedVersion',
    'targetVersion',
    'state',
    'progress',
    'reason',
    'entrances',
    'cfgType',
    'updatedAt',
  ]),
  AppEntrance: new Set(['name', 'title', 'url', 'state', 'authLevel', 'icon', 'openMethod', 'invisible', 'shared']),
  Task: new Set([
    'id',
    'taskId',
    'type',
    'status',
    'progress',
    'userId',
    'sourceId',
    'appName',
    'version',
    'opId',
    'error',
    'message',
    'result',
    'createdAt',
    'startedAt',
    'completedAt',
    'retryOfTaskId',
  ]),
};

/** The chart repo's types (schema/chart-repo*.ts) only present the status the store holds. */
const isChartRepoType = (type: string) => type.startsWith('ChartRepo');

/** Directives whose effect is fixed by the variables, which are part of the cache key. */
const PLAIN_DIRECTIVES = new Set(['include', 'skip']);

function isStoreField(type: string, field: string): boolean {
  return field === '__typename' || isChartRepoType(type) || STORE_FIELDS[type]?.has(field) === true;
}

/** Whether the query `operationName` of `document` (validated) reads the runtime store's content only. */
export function readsOnlyRuntimeState(
  schema: GraphQLSchema,
  document: DocumentNode,
  operationName: string | null | undefined,
): boolean {
  const operation = getOperationAST(document, operationName);
  const query = schema.getQueryType();
  if (!query || operation?.operation !== 'query' || operation.directives?.length) return false;
  const fragments = new Map<string, FragmentDefinitionNode>();
  for (const definition of document.definitions) {
    if (definition.kind === Kind.FRAGMENT_DEFINITION) fragments.set(definition.name.value, definition);
  }
  const rootFields = operation.selectionSet.selections;
  // Only runtimeSnapshot at the root: `{ __typename }` alone is no snapshot worth a cache entry.
  const namesSnapshot = rootFields.some((s) => s.kind === Kind.FIELD && s.name.value === 'runtimeSnapshot');
  return namesSnapshot && selectsStoreFields(schema, query.name, operation.selectionSet, fragments);
}

function selectsStoreFields(
  schema: GraphQLSchema,
  typeName: string,
  selectionSet: SelectionSetNode,
  fragments: ReadonlyMap<string, FragmentDefinitionNode>,
): boolean {
  const type = schema.getType(typeName);
  if (!isObjectType(type)) return false; // interfaces and unions are not analysed
  for (const selection of selectionSet.selections) {
    if (selection.directives?.some((directive) => !PLAIN_DIRECTIVES.has(directive.name.value))) return false;
    if (selection.kind === Kind.FIELD) {
      const name = selection.name.value;
      if (!isStoreField(typeName, name)) return false;
      if (name === '__typename' || !selection.selectionSet) continue;
      const field = type.getFields()[name];
      if (!field) return false;
      if (!selectsStoreFields(schema, getNamedType(field.type).name, selection.selectionSet, fragments)) return false;
      continue;
    }
    const fragment = selection.kind === Kind.FRAGMENT_SPREAD ? fragments.get(selection.name.value) : selection;
    if (!fragment) return false;
    const on = fragment.typeCondition?.name.value ?? typeName;
    // A validated fragment on the field's own type; spreads of other types would need the runtime type.
    if (on !== typeName || fragment.directives?.length) return false;
    if (!selectsStoreFields(schema, typeName, fragment.selectionSet, fragments)) return false;
  }
  return true;
}
