// The dashboard's operations besides the runtime feed (whose two documents stay in dashboard.js,
// where test/production-switches.test.ts reads them). Like those, these are GraphQL Code
// Generator documents: the persisted-documents manifest must hold them, because under
// PERSISTED_DOCUMENTS the server runs a document sent as text only when it is a manifest
// document, whitespace aside, and the manifest's are normalised with their selections sorted
// (fields by name in code-unit order, then inline fragments by type). Keep every selection in
// that order here.

export const VIEWER = /* GraphQL */ `query DashboardViewer {
  viewer { isAdmin userId }
}`;

export const CANCEL_TASK = /* GraphQL */ `mutation DashboardCancelTask($input: CancelTaskInput!) {
  cancelTask(input: $input) {
    __typename
    ... on CancelTaskSuccess {
      task { appName completedAt createdAt error message progress retryOfTaskId sourceId startedAt status taskId type userId }
    }
    ... on Error { code message }
  }
}`;

export const RETRY_TASK = /* GraphQL */ `mutation DashboardRetryTask($input: RetryTaskInput!) {
  retryTask(input: $input) {
    __typename
    ... on Error { code message }
    ... on RetryTaskSuccess {
      task { appName completedAt createdAt error message progress retryOfTaskId sourceId startedAt status taskId type userId }
    }
  }
}`;

export const HISTORY = /* GraphQL */ `query DashboardHistory {
  history(first: 50) {
    edges { node { app id message time type userId } }
  }
}`;

export const HISTORY_ADDED = /* GraphQL */ `subscription DashboardHistoryAdded {
  historyAdded { app id message time type userId }
}`;

export const PAYMENTS = /* GraphQL */ `query DashboardPayments {
  payments(first: 50) {
    edges {
      node {
        appId appName createdAt developerSync id larePassSync paymentNeed paymentStatus signatureStatus sourceId
        status txHash updatedAt userId
      }
    }
    totalCount
  }
}`;

export const PAYMENT_UPDATED = /* GraphQL */ `subscription DashboardPaymentUpdated {
  paymentUpdated {
    appId appName createdAt developerSync id larePassSync paymentNeed paymentStatus signatureStatus sourceId
    status txHash updatedAt userId
  }
}`;
