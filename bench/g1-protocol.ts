/**
 * What the G1 benchmark (bench/g1.ts) and its server processes (bench/g1-servers.ts) share: the
 * four queries, the data they need, and the IPC requests.
 */

/** The servers of the comparison, each a process of bench/g1-servers.ts (G1_ROLE). */
export type G1Role = 'raw' | 'subject' | 'yoga' | 'mercurius';

/** Whose tasks `tasks(first: 20)` lists, and how many tasks the subject makes sure that user has. */
export const TASKS_USER = 'alice';
export const TASKS_PAGE = 20;
/** More than a page, so the page is full and `hasNextPage` is true. */
export const TASKS_WANTED = TASKS_PAGE + 5;
export const CATALOG_PAGE = 20;
/** An app the demo data installs for the local admin (the viewer of local development mode). */
export const APP_KEY = { sourceId: 'market.olares', appName: 'vaultwarden' } as const;

export interface G1Query {
  /** The result's name is `g1-<key>`. */
  key: 'viewer' | 'app' | 'tasks' | 'catalog';
  title: string;
  /** The POST body, identical for every server. */
  body: string;
  /** Why the subject's answer is the one meant (throws otherwise): the data the query must find. */
  check(data: Record<string, unknown>): void;
}

function request(query: string, operationName: string, variables?: Record<string, unknown>): string {
  return JSON.stringify({ query, operationName, ...(variables ? { variables } : {}) });
}

function assert(condition: unknown, message: string): asserts condition {
  if (!condition) throw new Error(message);
}

type Edges = { edges?: { node?: Record<string, unknown> }[] } | null | undefined;

export const G1_QUERIES: G1Query[] = [
  {
    key: 'viewer',
    title: '`{ viewer { userId isAdmin } }`',
    body: request('query G1Viewer { viewer { userId isAdmin } }', 'G1Viewer'),
    check(data) {
      const viewer = data.viewer as { userId?: string } | null;
      assert(viewer?.userId === 'admin', `viewer is ${JSON.stringify(viewer)}, not the local admin`);
    },
  },
  {
    key: 'app',
    title: 'one app by key: `app(sourceId, appName) { appName stage health installedVersion }`',
    body: request(
      'query G1App($sourceId: String!, $appName: String!) { app(sourceId: $sourceId, appName: $appName) { appName stage health installedVersion } }',
      'G1App',
      { ...APP_KEY },
    ),
    check(data) {
      const app = data.app as { appName?: string } | null;
      assert(app?.appName === APP_KEY.appName, `app(${APP_KEY.appName}) is ${JSON.stringify(app)}`);
    },
  },
  {
    key: 'tasks',
    title: `a user's \`tasks(first: ${TASKS_PAGE})\` (${TASKS_USER})`,
    body: request(
      'query G1Tasks($first: Int!, $filter: TaskFilter) { tasks(first: $first, filter: $filter) { totalCount pageInfo { hasNextPage endCursor } edges { node { taskId type status progress userId appName version createdAt completedAt } } } }',
      'G1Tasks',
      { first: TASKS_PAGE, filter: { userId: TASKS_USER } },
    ),
    check(data) {
      const edges = (data.tasks as Edges)?.edges ?? [];
      assert(edges.length === TASKS_PAGE, `tasks(first: ${TASKS_PAGE}) returned ${edges.length} tasks`);
      assert(
        edges.every((edge) => edge.node?.userId === TASKS_USER),
        `tasks(first: ${TASKS_PAGE}) returned tasks of other users than ${TASKS_USER}`,
      );
    },
  },
  {
    key: 'catalog',
    title: `a \`catalog(first: ${CATALOG_PAGE})\` page`,
    body: request(
      'query G1Catalog($first: Int!) { catalog(first: $first) { totalCount pageInfo { hasNextPage endCursor } edges { node { sourceId name version versions cfgType title description categories paid } } } }',
      'G1Catalog',
      { first: CATALOG_PAGE },
    ),
    check(data) {
      const edges = (data.catalog as Edges)?.edges ?? [];
      assert(edges.length === CATALOG_PAGE, `catalog(first: ${CATALOG_PAGE}) returned ${edges.length} apps`);
    },
  },
];

/** A canned answer of the raw baseline: for this request body, these bytes. */
export interface RawAnswer {
  requestBody: string;
  status: number;
  contentType: string;
  body: string;
}

export type G1Request =
  | { id: number; type: 'cpu' }
  /** Raw baseline only: the answers to serve from now on. */
  | { id: number; type: 'answers'; answers: RawAnswer[] }
  | { id: number; type: 'stop' };

/** Subject only: how its data was made ready, in its `ready` message's detail. */
export type SubjectReady = {
  /** Time until the task engine had finished the demo data's pending tasks. */
  settleMs: number;
  /** Tasks added for TASKS_USER so that a full page exists. */
  tasksAdded: number;
  tasksOfUser: number;
  catalogApps: number;
};
