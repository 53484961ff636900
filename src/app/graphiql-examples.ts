/**
 * What GraphiQL's editor opens with: one operation of each kind, so an explorer can read the
 * catalogue, install from it and watch the install happen without looking anything up first.
 * test/graphiql-examples.test.ts validates it against the schema, so it cannot drift from it.
 */
export const GRAPHIQL_EXAMPLES = `# Welcome to the Market Runtime GraphQL API.
# Four operations follow: the run button asks which one to run.
# Ctrl-Space completes a field; the Docs button (top left) describes every type.

# The apps and their active tasks.
query Apps {
  viewer { userId isAdmin }
  apps(first: 10) {
    totalCount
    edges {
      node { appName sourceId userId stage health installedVersion activeTask { taskId type status progress } }
    }
  }
}

# What can be installed: each app's source, name and versions.
query Catalog {
  catalog(first: 10) {
    totalCount
    edges { node { sourceId name title versions } }
  }
}

# Install one: put a sourceId, name and version from Catalog here.
mutation Install {
  installApp(input: { sourceId: "market.olares", appName: "<name>", version: "<version>" }) {
    __typename
    ... on InstallAppSuccess { task { taskId status } }
    ... on Error { code message }
  }
}

# Every change to apps, tasks and components as it happens, until you stop it.
# Reconnecting, pass the last sequence you saw as since: to miss nothing.
subscription Live {
  runtimeEvents {
    sequence
    kind
    at
    app { appName userId stage progress }
    task { taskId type status progress error }
  }
}
`;
