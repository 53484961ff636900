/**
 * The chart repo's status as typed domain objects: the Go original's nested types (ChartRepoAppState,
 * ChartRepoImageState, the hydrator and image-analyzer queues …) with camelCase names. They are
 * read once per collect (status-parse.ts) and served as they are to every subscriber, so they are
 * plain objects (they travel through the cluster change log by structured clone). Timestamps are
 * Dates or null (absent, unparseable or Go's zero time); Go durations are milliseconds.
 */

export interface ChartRepoSystem {
  hostname: string | null;
  version: string | null;
  uptimeSeconds: number | null;
  /** The chart repo's own per-component map, as it sends it. */
  components: Record<string, unknown> | null;
  resourceUsage: Record<string, unknown> | null;
}

export interface ChartRepoStep {
  name: string;
  index: number;
  total: number;
  status: string;
  startedAt: Date | null;
  updatedAt: Date | null;
  retryCount: number;
}

export interface ChartRepoProcessing {
  taskId: string;
  durationMs: number | null;
}

export interface ChartRepoError {
  message: string;
  step: string | null;
}

export interface ChartRepoAppState {
  appId: string;
  appName: string;
  userId: string;
  sourceId: string;
  state: string;
  currentStep: ChartRepoStep | null;
  processing: ChartRepoProcessing | null;
  createdAt: Date | null;
  lastUpdatedAt: Date | null;
  error: ChartRepoError | null;
  lastUpdate: Date | null;
}

export interface ChartRepoImageNode {
  nodeName: string;
  architecture: string | null;
  os: string | null;
  totalSize: number | null;
  downloadedSize: number | null;
  layerCount: number | null;
  downloadedLayers: number | null;
  progress: number | null;
}

export interface ChartRepoImageState {
  imageName: string;
  appId: string | null;
  appName: string | null;
  status: string;
  architecture: string | null;
  totalSize: number | null;
  downloadedSize: number | null;
  downloadProgress: number | null;
  layerCount: number | null;
  downloadedLayers: number | null;
  analysisStatus: string | null;
  analyzedAt: Date | null;
  errorMessage: string | null;
  nodes: ChartRepoImageNode[];
  lastUpdate: Date | null;
}

export interface ChartRepoHydratorTask {
  taskId: string;
  userId: string | null;
  sourceId: string | null;
  appId: string | null;
  appName: string;
  status: string;
  stepName: string | null;
  totalSteps: number | null;
  retryCount: number;
  lastError: string | null;
  createdAt: Date | null;
  updatedAt: Date | null;
}

export interface ChartRepoHydrator {
  queueLength: number;
  activeTasks: number;
  completedTasks: number;
  failedTasks: number;
  workerCount: number;
  tasks: ChartRepoHydratorTask[];
  recentFailed: ChartRepoHydratorTask[];
}

export interface ChartRepoAnalysisTask {
  taskId: string;
  appName: string;
  appDir: string | null;
  status: string;
  createdAt: Date | null;
  startedAt: Date | null;
  completedAt: Date | null;
  workerId: string | null;
  durationMs: number | null;
  imagesCount: number;
  analyzedCount: number | null;
  error: string | null;
  errorStep: string | null;
  images: string[];
}

export interface ChartRepoImageAnalyzer {
  isRunning: boolean;
  healthStatus: string | null;
  lastCheck: Date | null;
  queueLength: number;
  activeWorkers: number;
  cachedImages: number;
  analyzingCount: number;
  queuedTasks: ChartRepoAnalysisTask[];
  processingTasks: ChartRepoAnalysisTask[];
  recentCompleted: ChartRepoAnalysisTask[];
  recentFailed: ChartRepoAnalysisTask[];
  totalAnalyzed: number;
  successfulAnalyzed: number;
  failedAnalyzed: number;
  averageAnalysisTimeMs: number | null;
  errorMessage: string | null;
}

export interface ChartRepoQueues {
  hydrator: ChartRepoHydrator | null;
  imageAnalyzer: ChartRepoImageAnalyzer | null;
}

/** The typed part of a status: what one answer gives, and what several give once aggregated. */
export interface ChartRepoTypedStatus {
  systemStatus: ChartRepoSystem | null;
  appStates: ChartRepoAppState[];
  imageStates: ChartRepoImageState[];
  queues: ChartRepoQueues | null;
  /**
   * Items the typed fields leave out: entries that are not objects, lack a required field or hold
   * one of the wrong type, and entries beyond the list bounds, which the raw blocks still hold; and
   * app states and hydrator tasks of another user or source in a per-pair answer, which they do not.
   */
  droppedItems: number;
}
