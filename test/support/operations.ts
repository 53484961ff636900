import { graphql } from '../gql/index.js';

// The operations the tests send, as a frontend would write them: typed by `npm run codegen`.

export const ViewerQuery = graphql(`
  query Viewer {
    viewer { userId isAdmin }
  }
`);

export const AppsQuery = graphql(`
  query Apps($filter: AppFilter, $first: Int, $after: String, $last: Int, $before: String) {
    apps(filter: $filter, first: $first, after: $after, last: $last, before: $before) {
      totalCount
      pageInfo { hasNextPage hasPreviousPage startCursor endCursor }
      edges {
        cursor
        node {
          id userId sourceId appName stage health installedVersion targetVersion state progress reason cfgType updatedAt
          activeTask { taskId type status }
        }
      }
    }
  }
`);

export const AppsWithTasksQuery = graphql(`
  query AppsWithTasks($first: Int) {
    apps(first: $first) {
      edges {
        node {
          appName stage
          activeTask { taskId app { appName } }
          tasks(first: 5) { totalCount edges { node { taskId status app { appName stage } } } }
        }
      }
    }
  }
`);

export const AppQuery = graphql(`
  query App($sourceId: String!, $appName: String!, $userId: String) {
    app(sourceId: $sourceId, appName: $appName, userId: $userId) {
      id userId appName stage health
      tasks(first: 10, status: [COMPLETED, FAILED]) { totalCount edges { node { taskId status } } }
    }
  }
`);

export const TasksQuery = graphql(`
  query Tasks($filter: TaskFilter, $first: Int, $after: String, $last: Int, $before: String) {
    tasks(filter: $filter, first: $first, after: $after, last: $last, before: $before) {
      totalCount
      pageInfo { hasNextPage hasPreviousPage startCursor endCursor }
      edges { cursor node { id taskId type status progress userId appName version error createdAt completedAt app { appName } } }
    }
  }
`);

export const TaskQuery = graphql(`
  query Task($taskId: String!) {
    task(taskId: $taskId) { id taskId userId status }
  }
`);

export const NodeQuery = graphql(`
  query Node($id: ID!) {
    node(id: $id) {
      __typename
      id
      ... on App { appName userId }
      ... on Task { taskId userId }
      ... on Payment { appId userId status }
      ... on HistoryRecord { type userId }
      ... on MarketSource { sourceId }
      ... on CatalogApp { name }
    }
  }
`);

export const PaymentsQuery = graphql(`
  query Payments($filter: PaymentFilter) {
    payments(filter: $filter, first: 50) {
      totalCount
      edges { node { id userId appId productId status paymentNeed developerSync larePassSync signatureStatus paymentStatus txHash } }
    }
  }
`);

export const PaymentStatusQuery = graphql(`
  query PaymentStatus($sourceId: String!, $appId: String!) {
    paymentStatus(sourceId: $sourceId, appId: $appId) { id userId status }
  }
`);

export const HistoryQuery = graphql(`
  query History($filter: HistoryFilter, $first: Int, $after: String) {
    history(filter: $filter, first: $first, after: $after) {
      totalCount
      pageInfo { hasNextPage endCursor }
      edges { node { id type message app userId time extended } }
    }
  }
`);

export const CatalogQuery = graphql(`
  query Catalog($sourceId: String, $search: String, $category: String, $first: Int, $after: String) {
    catalog(sourceId: $sourceId, search: $search, category: $category, first: $first, after: $after) {
      totalCount
      pageInfo { hasNextPage endCursor }
      edges { node { id sourceId appId name version versions title categories paid } }
    }
  }
`);

export const MarketSourcesQuery = graphql(`
  query MarketSources {
    marketSources { id sourceId title type baseUrl priority isActive }
  }
`);
