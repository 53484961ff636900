import { isRecord } from '../../platform/json.js';
import { goDurationMs, goDurationTextMs } from './go-duration.js';
import type { ChartRepoPair } from './port.js';
import {
  count,
  type Drops,
  errorText,
  identifier,
  identifiers,
  list,
  map,
  percent,
  size,
  text,
  time,
} from './status-fields.js';
import type {
  ChartRepoAnalysisTask,
  ChartRepoAppState,
  ChartRepoHydrator,
  ChartRepoHydratorTask,
  ChartRepoImageAnalyzer,
  ChartRepoImageNode,
  ChartRepoImageState,
  ChartRepoStep,
  ChartRepoSystem,
  ChartRepoTypedStatus,
} from './status-types.js';

/**
 * Reading one status answer's `data` (snake_case, as the chart repo's Go structs marshal it) into
 * the typed status, once per collect. The rule for what the chart repo sends wrong: an item whose
 * identifying or required field is missing or of the wrong type is dropped and counted in
 * `droppedItems`; an optional field of the wrong type is null; a nested optional block (current
 * step, processing, error) missing its own required fields is null; counters the Go structs always
 * send are 0 when missing.
 *
 * Lists are bounded: a real chart repo holds at most a few hundred apps and images per user and
 * short "recent" lists, so these bounds are never reached in practice; they only keep a broken
 * or hostile answer from filling the memory every subscriber is served from.
 */
const MAX_APPS = 5_000;
const MAX_IMAGES = 5_000;
const MAX_NODES_PER_IMAGE = 256;
const MAX_TASKS_PER_LIST = 2_000;
const MAX_IMAGES_PER_TASK = 1_000;

/**
 * The typed status of one answer. `pair` is whom the call was made for: an app state or hydrator
 * task without its own user or source id belongs to the pair asked about (the chart repo answers
 * for that pair only), and one naming another user or source is dropped (see belongsToPair).
 */
export function parseAnswer(data: Record<string, unknown>, pair: ChartRepoPair | null): ChartRepoTypedStatus {
  const drops: Drops = { dropped: 0 };
  const tasks = isRecord(data.tasks) ? data.tasks : {};
  const hydrator = isRecord(tasks.hydrator) ? parseHydrator(tasks.hydrator, pair, drops) : null;
  const analyzer =
    isRecord(tasks.image_analyzer) && Object.keys(tasks.image_analyzer).length > 0
      ? parseImageAnalyzer(tasks.image_analyzer, drops)
      : null;
  return {
    systemStatus: isRecord(data.system) && Object.keys(data.system).length > 0 ? parseSystem(data.system) : null,
    appStates: list(data.apps, MAX_APPS, drops, (app) => parseAppState(app, pair)),
    imageStates: list(data.images, MAX_IMAGES, drops, (image) => parseImageState(image, drops)),
    queues: hydrator || analyzer ? { hydrator, imageAnalyzer: analyzer } : null,
    droppedItems: drops.dropped,
  };
}

/**
 * Whether an app state or hydrator task of a per-pair answer may be shown as that pair's. A chart
 * repo that ignored `user=` or `source=` would answer alice's call with everyone's items, and the
 * status alice is served is built from her calls' answers alone: trusting the item's own user id
 * would show her admin's apps. So an item naming another user or source than the pair is left out
 * (counted in droppedItems, and out of the raw blocks too, see status-answer.ts); one naming none
 * (missing, null or Go's empty string) is the pair's. The call for all users keeps every item.
 */
export function belongsToPair(item: Record<string, unknown>, pair: ChartRepoPair | null): boolean {
  if (!pair) return true;
  return unnamedOr(item.user_id, pair.userId) && unnamedOr(item.source_id, pair.sourceId);
}

function unnamedOr(value: unknown, expected: string): boolean {
  return value === undefined || value === null || value === '' || value === expected;
}

function parseSystem(system: Record<string, unknown>): ChartRepoSystem {
  return {
    hostname: text(system.hostname),
    version: text(system.version),
    uptimeSeconds: uptimeSeconds(system.uptime),
    components: map(system.components),
    resourceUsage: map(system.resource_usage),
  };
}

/** The Go original keeps uptime as integer seconds; a duration string (`72h3m`) is read as well. */
function uptimeSeconds(value: unknown): number | null {
  if (typeof value === 'string') {
    const ms = goDurationTextMs(value);
    return ms === null ? null : count(ms / 1_000);
  }
  return count(value);
}

function parseAppState(app: Record<string, unknown>, pair: ChartRepoPair | null): ChartRepoAppState | null {
  if (!belongsToPair(app, pair)) return null;
  const appId = identifier(app.app_id);
  const appName = identifier(app.app_name);
  // Past belongsToPair, an id that is not the pair's names none: the item is the pair's.
  const userId = identifier(app.user_id) ?? pair?.userId ?? null;
  const sourceId = identifier(app.source_id) ?? pair?.sourceId ?? null;
  const state = identifier(app.state);
  if (!appId || !appName || !userId || !sourceId || !state) return null;
  const processing = isRecord(app.processing) ? app.processing : {};
  const processingTask = identifier(processing.task_id);
  const timestamps = isRecord(app.timestamps) ? app.timestamps : {};
  const error = isRecord(app.error) ? app.error : {};
  const message = errorText(error.message);
  return {
    appId,
    appName,
    userId,
    sourceId,
    state,
    currentStep: isRecord(app.current_step) ? parseStep(app.current_step) : null,
    processing: processingTask ? { taskId: processingTask, durationMs: goDurationMs(processing.duration) } : null,
    createdAt: time(timestamps.created_at),
    lastUpdatedAt: time(timestamps.last_updated_at),
    error: message ? { message, step: text(error.step) } : null,
    lastUpdate: time(app.last_update),
  };
}

function parseStep(step: Record<string, unknown>): ChartRepoStep | null {
  const name = identifier(step.name);
  const index = count(step.index);
  const total = count(step.total);
  const status = identifier(step.status);
  if (!name || index === null || total === null || !status) return null;
  return {
    name,
    index,
    total,
    status,
    startedAt: time(step.started_at),
    updatedAt: time(step.updated_at),
    retryCount: count(step.retry_count) ?? 0,
  };
}

function parseImageState(image: Record<string, unknown>, drops: Drops): ChartRepoImageState | null {
  const imageName = identifier(image.image_name);
  const status = identifier(image.status);
  if (!imageName || !status) return null;
  return {
    imageName,
    appId: identifier(image.app_id),
    appName: identifier(image.app_name),
    status,
    architecture: text(image.architecture),
    totalSize: size(image.total_size),
    downloadedSize: size(image.downloaded_size),
    downloadProgress: percent(image.download_progress),
    layerCount: count(image.layer_count),
    downloadedLayers: count(image.downloaded_layers),
    analysisStatus: text(image.analysis_status),
    analyzedAt: time(image.analyzed_at),
    errorMessage: errorText(image.error_message),
    nodes: list(image.nodes, MAX_NODES_PER_IMAGE, drops, parseImageNode),
    lastUpdate: time(image.last_update),
  };
}

function parseImageNode(node: Record<string, unknown>): ChartRepoImageNode | null {
  const nodeName = identifier(node.node_name);
  if (!nodeName) return null;
  return {
    nodeName,
    architecture: text(node.architecture),
    os: text(node.os),
    totalSize: size(node.total_size),
    downloadedSize: size(node.downloaded_size),
    layerCount: count(node.layer_count),
    downloadedLayers: count(node.downloaded_layers),
    progress: percent(node.progress),
  };
}

function parseHydrator(hydrator: Record<string, unknown>, pair: ChartRepoPair | null, drops: Drops): ChartRepoHydrator {
  const tasks = (value: unknown) => list(value, MAX_TASKS_PER_LIST, drops, (task) => parseHydratorTask(task, pair));
  return {
    queueLength: count(hydrator.queue_length) ?? 0,
    activeTasks: count(hydrator.active_tasks) ?? 0,
    completedTasks: count(hydrator.completed_tasks) ?? 0,
    failedTasks: count(hydrator.failed_tasks) ?? 0,
    workerCount: count(hydrator.worker_count) ?? 0,
    tasks: tasks(hydrator.tasks),
    recentFailed: tasks(hydrator.recent_failed),
  };
}

function parseHydratorTask(task: Record<string, unknown>, pair: ChartRepoPair | null): ChartRepoHydratorTask | null {
  if (!belongsToPair(task, pair)) return null;
  const taskId = identifier(task.task_id);
  const appName = identifier(task.app_name);
  const status = identifier(task.status);
  if (!taskId || !appName || !status) return null;
  return {
    taskId,
    // Like an app state's: a task naming no user or source is the pair's.
    userId: identifier(task.user_id) ?? pair?.userId ?? null,
    sourceId: identifier(task.source_id) ?? pair?.sourceId ?? null,
    appId: identifier(task.app_id),
    appName,
    status,
    stepName: text(task.step_name),
    totalSteps: count(task.total_steps),
    retryCount: count(task.retry_count) ?? 0,
    lastError: errorText(task.last_error),
    createdAt: time(task.created_at),
    updatedAt: time(task.updated_at),
  };
}

function parseImageAnalyzer(analyzer: Record<string, unknown>, drops: Drops): ChartRepoImageAnalyzer {
  const tasks = (value: unknown) => list(value, MAX_TASKS_PER_LIST, drops, parseAnalysisTask);
  return {
    isRunning: analyzer.is_running === true,
    healthStatus: text(analyzer.health_status),
    lastCheck: time(analyzer.last_check),
    queueLength: count(analyzer.queue_length) ?? 0,
    activeWorkers: count(analyzer.active_workers) ?? 0,
    cachedImages: count(analyzer.cached_images) ?? 0,
    analyzingCount: count(analyzer.analyzing_count) ?? 0,
    queuedTasks: tasks(analyzer.queued_tasks),
    processingTasks: tasks(analyzer.processing_tasks),
    recentCompleted: tasks(analyzer.recent_completed),
    recentFailed: tasks(analyzer.recent_failed),
    totalAnalyzed: count(analyzer.total_analyzed) ?? 0,
    successfulAnalyzed: count(analyzer.successful_analyzed) ?? 0,
    failedAnalyzed: count(analyzer.failed_analyzed) ?? 0,
    averageAnalysisTimeMs: goDurationMs(analyzer.average_analysis_time),
    errorMessage: errorText(analyzer.error_message),
  };
}

function parseAnalysisTask(task: Record<string, unknown>): ChartRepoAnalysisTask | null {
  const taskId = identifier(task.task_id);
  const appName = identifier(task.app_name);
  const status = identifier(task.status);
  if (!taskId || !appName || !status) return null;
  const images = identifiers(task.images, MAX_IMAGES_PER_TASK);
  return {
    taskId,
    appName,
    appDir: text(task.app_dir),
    status,
    createdAt: time(task.created_at),
    startedAt: time(task.started_at),
    completedAt: time(task.completed_at),
    workerId: workerId(task.worker_id),
    durationMs: goDurationMs(task.duration),
    imagesCount: count(task.images_count) ?? images.length,
    analyzedCount: count(task.analyzed_count),
    error: errorText(task.error),
    errorStep: text(task.error_step),
    images,
  };
}

/**
 * The Go worker ids are small non-negative integers; kept as text so a named worker fits too. A
 * number that is not a safe non-negative integer (1e30, -1, 1.5) names no worker and is null,
 * rather than clamped into an id (2147483647, 0) that looks real.
 */
function workerId(value: unknown): string | null {
  if (typeof value !== 'number') return identifier(value);
  return Number.isSafeInteger(value) && value >= 0 ? String(value) : null;
}
