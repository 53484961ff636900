// The processing-flow page's GraphQL documents. They are also GraphQL Code Generator documents
// (codegen.yml plucks the /* GraphQL */ literals), so the persisted-documents manifest holds them
// and the page keeps working under PERSISTED_DOCUMENTS, where a document sent as text runs only
// when it is a manifest document, whitespace aside. The manifest's are normalised with their
// fields sorted: keep every selection in alphabetical order, and every field's argument list
// short (graphql-js prints a line over 80 characters differently).

/** Everything the page starts from, and the runtime sequence to follow events from. */
export const FLOW_QUERY = /* GraphQL */ `query AppFlow($appName: String!, $filter: SnapshotFilter, $sourceId: String!, $taskFilter: TaskFilter, $userId: String) {
  app(appName: $appName, sourceId: $sourceId, userId: $userId) {
    appName
    catalogApp { name title version }
    entrances { name shared state title url }
    health installedVersion latestVersion progress reason sourceId sourceRemoved stage state targetVersion
    updatedAt userId
  }
  catalog(first: 20, search: $appName, sourceId: $sourceId) { edges { node { name title version } } }
  chartRepo {
    appStates(appName: $appName, sourceId: $sourceId, userId: $userId) {
      appId appName createdAt
      currentStep { index name retryCount startedAt status total updatedAt }
      error { message step }
      lastUpdate lastUpdatedAt
      processing { durationMs taskId }
      sourceId state userId
    }
    imageStates(appName: $appName) {
      analysisStatus analyzedAt appId appName architecture downloadProgress downloadedLayers downloadedSize
      errorMessage imageName layerCount
      nodes { downloadedSize nodeName progress totalSize }
      status totalSize
    }
    lastError lastUpdate
    queues {
      hydrator {
        recentFailed { appName createdAt lastError sourceId taskId updatedAt userId }
        tasks { appName createdAt lastError retryCount sourceId status stepName taskId totalSteps updatedAt userId }
      }
      imageAnalyzer {
        processingTasks { analyzedCount appName durationMs error errorStep imagesCount status taskId }
        queuedTasks { analyzedCount appName durationMs error errorStep imagesCount status taskId }
        recentCompleted { analyzedCount appName durationMs error errorStep imagesCount status taskId }
        recentFailed { analyzedCount appName durationMs error errorStep imagesCount status taskId }
      }
    }
    reachable
  }
  components { message name state }
  marketSources {
    sourceId
    sync { appCount consecutiveFailures durationMs lastAttemptAt lastError lastSyncAt nextSyncAt }
    title type
  }
  runtimeSnapshot(filter: $filter) { sequence }
  tasks(filter: $taskFilter, first: 10) {
    edges { node { appName completedAt createdAt error message progress sourceId status taskId type userId version } }
  }
}`;

/** The catalogue entry and the source's sync status again, after the Syncer changed. */
export const SYNCER_QUERY = /* GraphQL */ `query AppFlowSyncer($appName: String!, $sourceId: String!) {
  catalog(first: 20, search: $appName, sourceId: $sourceId) { edges { node { name title version } } }
  marketSources {
    sourceId
    sync { appCount consecutiveFailures durationMs lastAttemptAt lastError lastSyncAt nextSyncAt }
    title type
  }
}`;

/** Every change of this app, its tasks, the chart repo and the components, from a sequence on. */
export const FLOW_EVENTS = /* GraphQL */ `subscription AppFlowEvents($appName: String!, $filter: SnapshotFilter, $since: Float, $sourceId: String!, $userId: String) {
  runtimeEvents(filter: $filter, since: $since) {
    app {
      appName
      catalogApp { name title version }
      entrances { name shared state title url }
      health installedVersion latestVersion progress reason sourceId sourceRemoved stage state targetVersion
      updatedAt userId
    }
    chartRepo {
      appStates(appName: $appName, sourceId: $sourceId, userId: $userId) {
        appId appName createdAt
        currentStep { index name retryCount startedAt status total updatedAt }
        error { message step }
        lastUpdate lastUpdatedAt
        processing { durationMs taskId }
        sourceId state userId
      }
      imageStates(appName: $appName) {
        analysisStatus analyzedAt appId appName architecture downloadProgress downloadedLayers downloadedSize
        errorMessage imageName layerCount
        nodes { downloadedSize nodeName progress totalSize }
        status totalSize
      }
      lastError lastUpdate
      queues {
        hydrator {
          recentFailed { appName createdAt lastError sourceId taskId updatedAt userId }
          tasks { appName createdAt lastError retryCount sourceId status stepName taskId totalSteps updatedAt userId }
        }
        imageAnalyzer {
          processingTasks { analyzedCount appName durationMs error errorStep imagesCount status taskId }
          queuedTasks { analyzedCount appName durationMs error errorStep imagesCount status taskId }
          recentCompleted { analyzedCount appName durationMs error errorStep imagesCount status taskId }
          recentFailed { analyzedCount appName durationMs error errorStep imagesCount status taskId }
        }
      }
      reachable
    }
    component { message name state }
    kind
    removedApp { appName sourceId userId }
    sequence
    task { appName completedAt createdAt error message progress sourceId status taskId type userId version }
  }
}`;

/** Each change a sync or an upload made to the source's catalogue (the entry is then read again). */
export const CATALOGUE_EVENTS = /* GraphQL */ `subscription AppFlowCatalogue($sourceId: String) {
  catalogueChanged(sourceId: $sourceId) { added removed sourceId updated }
}`;
