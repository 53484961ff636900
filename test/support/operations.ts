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

export const InstallAppMutation = graphql(`
  mutation InstallApp($input: InstallAppInput!) {
    installApp(input: $input) {
      __typename
      ... on InstallAppSuccess { task { taskId type status progress userId appName version } }
      ... on Error { code message }
      ... on ValidationError { issues { path message } }
    }
  }
`);

export const UpgradeAppMutation = graphql(`
  mutation UpgradeApp($input: UpgradeAppInput!) {
    upgradeApp(input: $input) {
      __typename
      ... on UpgradeAppSuccess { task { taskId type status version } }
      ... on Error { code message }
    }
  }
`);

export const UninstallAppMutation = graphql(`
  mutation UninstallApp($input: UninstallAppInput!) {
    uninstallApp(input: $input) {
      __typename
      ... on UninstallAppSuccess { task { taskId type status version } }
      ... on Error { code message }
    }
  }
`);

export const CloneAppMutation = graphql(`
  mutation CloneApp($input: CloneAppInput!) {
    cloneApp(input: $input) {
      __typename
      ... on CloneAppSuccess { task { taskId type status appName version } }
      ... on Error { code message }
      ... on ValidationError { issues { path message } }
    }
  }
`);

export const CancelTaskMutation = graphql(`
  mutation CancelTask($input: CancelTaskInput!) {
    cancelTask(input: $input) {
      __typename
      ... on CancelTaskSuccess { task { taskId status error } }
      ... on Error { code message }
    }
  }
`);

export const RetryTaskMutation = graphql(`
  mutation RetryTask($input: RetryTaskInput!) {
    retryTask(input: $input) {
      __typename
      ... on RetryTaskSuccess { task { taskId status retryOfTaskId type appName version } }
      ... on Error { code message }
    }
  }
`);

export const TaskDetailQuery = graphql(`
  query TaskDetail($taskId: String!) {
    task(taskId: $taskId) {
      taskId type status progress error message opId startedAt completedAt retryOfTaskId
      app { appName stage health state installedVersion targetVersion reason }
    }
  }
`);

export const PurchaseAppMutation = graphql(`
  mutation PurchaseApp($input: PurchaseAppInput!) {
    purchaseApp(input: $input) {
      __typename
      ... on PurchaseAppSuccess { payment { id userId appId productId status paymentNeed developerSync larePassSync signatureStatus paymentStatus notifications { channel topic status payload } } }
      ... on Error { code message }
    }
  }
`);

export const RestorePurchaseMutation = graphql(`
  mutation RestorePurchase($input: PurchaseAppInput!) {
    restorePurchase(input: $input) {
      __typename
      ... on RestorePurchaseSuccess { payment { id status developerSync signatureStatus paymentStatus } }
      ... on Error { code message }
    }
  }
`);

export const SubmitSignatureMutation = graphql(`
  mutation SubmitSignature($input: SubmitSignatureInput!) {
    submitSignature(input: $input) {
      __typename
      ... on SubmitSignatureSuccess { payment { id status signatureStatus paymentStatus larePassSync } }
      ... on Error { code message }
      ... on ValidationError { issues { path } }
    }
  }
`);

export const SignatureCallbackMutation = graphql(`
  mutation SignatureCallback($input: SignatureCallbackInput!) {
    signatureCallback(input: $input) {
      __typename
      ... on SignatureCallbackSuccess { payment { id status developerSync signatureStatus larePassSync } }
      ... on Error { code message }
      ... on ValidationError { issues { path } }
    }
  }
`);

export const StartFrontendPaymentMutation = graphql(`
  mutation StartFrontendPayment($input: StartFrontendPaymentInput!) {
    startFrontendPayment(input: $input) {
      __typename
      ... on StartFrontendPaymentSuccess { payment { id status paymentStatus frontendData } }
      ... on Error { code message }
    }
  }
`);

export const SubmitPaymentTransactionMutation = graphql(`
  mutation SubmitPaymentTransaction($input: SubmitPaymentTransactionInput!) {
    submitPaymentTransaction(input: $input) {
      __typename
      ... on SubmitPaymentTransactionSuccess { payment { id status paymentStatus txHash developerSync } }
      ... on Error { code message }
      ... on ValidationError { issues { path } }
    }
  }
`);

export const PaymentUpdatedSubscription = graphql(`
  subscription PaymentUpdated($filter: PaymentFilter) {
    paymentUpdated(filter: $filter) { id userId appId status developerSync signatureStatus paymentStatus }
  }
`);

export const PaymentDetailQuery = graphql(`
  query PaymentDetail($sourceId: String!, $appId: String!) {
    paymentStatus(sourceId: $sourceId, appId: $appId) {
      id userId status paymentNeed developerSync larePassSync signatureStatus paymentStatus txHash frontendData developerName
      notifications { channel topic status payload }
    }
  }
`);

export const TaskUpdatedSubscription = graphql(`
  subscription TaskUpdated($filter: TaskFilter, $taskId: String) {
    taskUpdated(filter: $filter, taskId: $taskId) { taskId userId appName status progress }
  }
`);

export const AppUpdatedSubscription = graphql(`
  subscription AppUpdated($filter: AppFilter) {
    appUpdated(filter: $filter) { userId appName state stage health installedVersion }
  }
`);

export const HistoryAddedSubscription = graphql(`
  subscription HistoryAdded($filter: HistoryFilter) {
    historyAdded(filter: $filter) { type message app userId }
  }
`);

export const RuntimeSnapshotQuery = graphql(`
  query RuntimeSnapshot($filter: SnapshotFilter) {
    runtimeSnapshot(filter: $filter) {
      sequence
      summary { totalApps healthyApps unhealthyApps appsByStage { stage count } totalTasks pendingTasks runningTasks completedTasks failedTasks canceledTasks activeComponents }
      apps { userId appName stage health }
      tasks { taskId userId status }
      components { name state healthy message metrics }
      chartRepo { reachable lastError apps }
    }
  }
`);

export const RuntimeEventsSubscription = graphql(`
  subscription RuntimeEvents($filter: SnapshotFilter, $since: Float) {
    runtimeEvents(filter: $filter, since: $since) {
      sequence kind
      app { id userId appName stage }
      removedApp { id userId appName }
      task { taskId userId appName status progress }
      component { name state message }
      removedComponent
      summary { totalApps runningTasks completedTasks }
    }
  }
`);

export const RuntimeSnapshotSubscription = graphql(`
  subscription RuntimeSnapshotLive($filter: SnapshotFilter) {
    runtimeSnapshot(filter: $filter) { sequence tasks { taskId status progress } }
  }
`);
