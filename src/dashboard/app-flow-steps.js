// The five steps of one app's processing flow (Syncer → hydration → chart steps → image analysis
// → database), each with a status and, when it failed, the reason. Pure: it reads the page's
// state and returns plain objects; app-flow-view.js turns them into HTML.

import { duration, isolate } from './format.js';

/** Every step is in one of these; the page shows them as badges. */
export const STATUS_LABEL = {
  done: 'done',
  'in-progress': 'in progress',
  failed: 'failed',
  'not-started': 'not started',
  unknown: 'unknown',
};

export const NOTHING_IN_CHART_REPO = 'The chart repo has nothing for this app.';

// The chart repo's own status words (Go original: pending, running, completed, failed, …) vary
// per queue; what matters here is which of the five kinds each one is.
const FAILED_WORDS = /fail|error|abort|timeout|timed[_ -]?out|cancel/i;
const DONE_WORDS = /^(completed?|done|success(ful)?|succeeded|finished|analy[sz]ed|downloaded|ready|skipped)$/i;
const WAITING_WORDS = /^(pending|queued|waiting|new|created|not[_ -]?started|idle)?$/i;

/** The kind of step status a chart-repo status word means. */
export function classify(word) {
  const text = String(word ?? '').trim();
  if (FAILED_WORDS.test(text)) return 'failed';
  if (DONE_WORDS.test(text)) return 'done';
  if (WAITING_WORDS.test(text)) return 'not-started';
  return 'in-progress';
}

const byNewest = (a, b) =>
  String(b.updatedAt ?? b.createdAt ?? '').localeCompare(String(a.updatedAt ?? a.createdAt ?? ''));

const STEP_TITLES = [
  ['syncer', 'Syncer — catalogue'],
  ['hydration', 'Hydration'],
  ['chart', 'Chart steps'],
  ['images', 'Image analysis'],
  ['database', 'Database — app state'],
];

/** The five steps for the page's state (see app-flow.js `state`) and its parameters. */
export function buildSteps(state, params) {
  if (!state.appLoaded) {
    // Nothing read yet: every step is unknown, none is "missing".
    return STEP_TITLES.map(([id, title]) => ({
      id,
      title,
      status: 'unknown',
      summary: 'loading…',
      facts: [],
      notes: [],
    }));
  }
  return [
    syncerStep(state, params),
    hydrationStep(state, params),
    chartStep(state, params),
    imageStep(state, params),
    databaseStep(state, params),
  ];
}

function chartRepoMissing(chartRepo) {
  if (!chartRepo) return 'No chart repo data: the source is disabled or has not been collected yet.';
  return null;
}

function syncerStep({ source, catalogEntry, components, sourcesLoaded }, params) {
  const step = { id: 'syncer', title: 'Syncer — catalogue', facts: [], notes: [] };
  const sync = source?.sync;
  const component = components.get('syncer');
  if (component) step.facts.push(['Syncer', component.state, component.message]);
  if (!sourcesLoaded) return { ...step, status: 'unknown', summary: 'loading…' };
  if (!source) {
    return {
      ...step,
      status: 'unknown',
      reason: `The source ${params.source} is not among the offered sources (unknown, or an inactive remote).`,
      summary: 'source not offered',
    };
  }
  step.facts.push(
    [
      'Source',
      source.title ? `${isolate(source.title)} (${isolate(source.sourceId)}, ${source.type})` : source.sourceId,
    ],
    [
      'In catalogue',
      catalogEntry ? `${isolate(catalogEntry.title || catalogEntry.name)} ${catalogEntry.version}` : 'no',
    ],
    ['Last sync', { time: sync.lastSyncAt }],
    ['Last attempt', { time: sync.lastAttemptAt }],
    ['Next sync', { time: sync.nextSyncAt }],
    ['Catalogue apps', sync.appCount],
  );
  // A sync that succeeded keeps on lastError what it rejected (`N entries rejected; first: …`) or
  // that the index lags: only failures since the last success are a failed sync.
  const failed = sync.lastError && sync.consecutiveFailures > 0 ? sync.lastError : null;
  const warning = sync.lastError && !failed ? sync.lastError : null;
  if (failed) step.facts.push(['Last sync error', failed]);
  if (warning) step.facts.push(['Last sync warning', warning]);
  if (catalogEntry) {
    if (failed) step.notes.push('The last sync failed; the last good catalogue is kept.');
    if (warning) step.notes.push(`The last sync succeeded, with a warning: ${warning}`);
    return { ...step, status: 'done', summary: `version ${catalogEntry.version} in the catalogue` };
  }
  if (failed) return { ...step, status: 'failed', reason: `Sync failed: ${failed}`, summary: 'sync failed' };
  if (!sync.lastSyncAt) {
    return { ...step, status: 'not-started', reason: 'The source has not been synced yet.', summary: 'never synced' };
  }
  // An entry the sync rejected is not in the catalogue: the warning may say why.
  const why = warning ? ` The last sync succeeded, with a warning: ${warning}` : '';
  return {
    ...step,
    status: 'failed',
    reason: `The catalogue of ${params.source} does not offer ${params.app}.${why}`,
    summary: 'not in the catalogue',
  };
}

function hydratorTasks({ chartRepo }, params) {
  const hydrator = chartRepo?.queues?.hydrator;
  // An admin's page holds every user's tasks: only the ones that name this very app count (a
  // task without its owner or source could be anyone's).
  const mine = (task) => task.appName === params.app && task.userId === params.user && task.sourceId === params.source;
  return {
    tasks: (hydrator?.tasks ?? []).filter(mine).sort(byNewest),
    failed: (hydrator?.recentFailed ?? []).filter(mine),
  };
}

/** This app's state in the chart repo: the newest, should several of its answers name it. */
function appStateOf({ chartRepo }, params) {
  const newest = (s) => String(s.lastUpdate ?? s.lastUpdatedAt ?? '');
  return (chartRepo?.appStates ?? [])
    .filter((s) => s.appName === params.app && s.userId === params.user && s.sourceId === params.source)
    .sort((a, b) => newest(b).localeCompare(newest(a)))[0];
}

function hydrationStep(state, params) {
  const step = { id: 'hydration', title: 'Hydration', facts: [], notes: [] };
  const missing = chartRepoMissing(state.chartRepo);
  if (missing) return { ...step, status: 'unknown', reason: missing, summary: 'no data' };
  const { tasks, failed } = hydratorTasks(state, params);
  step.hydratorTasks = tasks;
  step.failedTasks = failed;
  const active = tasks.find((t) => ['in-progress', 'not-started'].includes(classify(t.status)));
  if (active) {
    const kind = classify(active.status);
    const where = active.stepName ? ` at ${active.stepName}` : '';
    return { ...step, status: kind, summary: `hydrator task ${active.status}${where}` };
  }
  const failure = tasks.find((t) => classify(t.status) === 'failed') ?? failed[0];
  if (failure) {
    return {
      ...step,
      status: 'failed',
      reason: failure.lastError || `Hydrator task ${failure.taskId} failed.`,
      summary: 'hydration failed',
    };
  }
  if (tasks.length > 0 || appStateOf(state, params)) return { ...step, status: 'done', summary: 'hydrated' };
  return { ...step, status: 'unknown', reason: NOTHING_IN_CHART_REPO, summary: 'no data' };
}

function chartStep(state, params) {
  const step = { id: 'chart', title: 'Chart steps', facts: [], notes: [] };
  const missing = chartRepoMissing(state.chartRepo);
  if (missing) return { ...step, status: 'unknown', reason: missing, summary: 'no data' };
  const app = appStateOf(state, params);
  if (!app) return { ...step, status: 'unknown', reason: NOTHING_IN_CHART_REPO, summary: 'no data' };
  const current = app.currentStep;
  const position = current ? `${current.index} of ${current.total}` : '';
  step.appState = app;
  step.facts.push(['State', app.state]);
  if (current) {
    step.facts.push(
      ['Current step', `${position}: ${current.name}`],
      ['Step status', current.status],
      ['Retries', current.retryCount],
      ['Step started', { time: current.startedAt }],
      ['Step updated', { time: current.updatedAt }],
    );
  }
  if (app.processing) {
    step.facts.push(['Processing task', app.processing.taskId, duration(app.processing.durationMs, { fine: true })]);
  }
  step.facts.push(
    ['Created', { time: app.createdAt }],
    ['Last updated', { time: app.lastUpdatedAt ?? app.lastUpdate }],
  );
  const summary = current ? `step ${position}: ${current.name}` : app.state;
  if (app.error) {
    const at = app.error.step ? ` (at step ${app.error.step})` : '';
    return { ...step, status: 'failed', reason: `${app.error.message}${at}`, summary };
  }
  const kind = classify(app.state);
  return { ...step, status: kind === 'not-started' && current ? 'in-progress' : kind, summary };
}

function analyzerTasks(state, params) {
  const analyzer = state.chartRepo?.queues?.imageAnalyzer;
  // Its tasks name only an app, no owner or source: they count when the chart repo has this
  // user's app of that name at all, never for an app it does not know for them.
  if (!appStateOf(state, params)) return [];
  const mine = (list, queue) =>
    (list ?? []).filter((task) => task.appName === params.app).map((task) => ({ ...task, queue }));
  return [
    ...mine(analyzer?.processingTasks, 'processing'),
    ...mine(analyzer?.queuedTasks, 'queued'),
    ...mine(analyzer?.recentFailed, 'failed'),
    ...mine(analyzer?.recentCompleted, 'completed'),
  ];
}

/**
 * This app's images: by name, and by the chart repo's app id where both the image and this
 * user's app state carry one (another user's app of the same name has another id). An image
 * that names no app belongs to no page.
 */
function imagesOf(state, params) {
  const appId = appStateOf(state, params)?.appId;
  return (state.chartRepo.imageStates ?? []).filter(
    (image) => image.appName === params.app && (!image.appId || !appId || image.appId === appId),
  );
}

function imageStep(state, params) {
  const step = { id: 'images', title: 'Image analysis', facts: [], notes: [] };
  const missing = chartRepoMissing(state.chartRepo);
  if (missing) return { ...step, status: 'unknown', reason: missing, summary: 'no data' };
  const images = imagesOf(state, params);
  const tasks = analyzerTasks(state, params);
  step.images = images;
  step.analyzerTasks = tasks;
  if (images.length === 0 && tasks.length === 0) {
    return { ...step, status: 'unknown', reason: NOTHING_IN_CHART_REPO, summary: 'no images' };
  }
  const downloaded = images.filter(
    (image) => (image.downloadProgress ?? 0) >= 100 || classify(image.status) === 'done',
  );
  const summary = `${downloaded.length} of ${images.length} image(s) downloaded`;
  const brokenImage = images.find((image) => image.errorMessage || classify(image.status) === 'failed');
  if (brokenImage) {
    const why = brokenImage.errorMessage || `status ${brokenImage.status}`;
    return { ...step, status: 'failed', reason: `${brokenImage.imageName}: ${why}`, summary };
  }
  const busy = tasks.some((task) => task.queue === 'processing' || task.queue === 'queued');
  const analysed = images.every((image) => classify(image.analysisStatus) === 'done');
  if (!busy && downloaded.length === images.length && analysed && images.length > 0) {
    return { ...step, status: 'done', summary };
  }
  const failedTask = tasks.find((task) => task.queue === 'failed');
  if (!busy && failedTask && !tasks.some((task) => task.queue === 'completed')) {
    const at = failedTask.errorStep ? ` (at ${failedTask.errorStep})` : '';
    return { ...step, status: 'failed', reason: `${failedTask.error || 'analysis failed'}${at}`, summary };
  }
  if (!busy && tasks.some((task) => task.queue === 'completed') && downloaded.length === images.length) {
    return { ...step, status: 'done', summary };
  }
  return { ...step, status: 'in-progress', summary };
}

const IN_PROGRESS_STAGES = new Set([
  'FETCHING',
  'HYDRATING',
  'INSTALLING',
  'RESUMING',
  'STOPPING',
  'UNINSTALLING',
  'UPGRADING',
]);

function databaseStep({ app, appLoaded, tasks }, params) {
  const step = { id: 'database', title: 'Database — app state', facts: [], notes: [] };
  step.tasks = [...tasks.values()].sort((a, b) => String(b.createdAt).localeCompare(String(a.createdAt))).slice(0, 10);
  if (!appLoaded) return { ...step, status: 'unknown', summary: 'loading…' };
  if (!app) {
    const last = step.tasks[0];
    if (last && last.status === 'FAILED') {
      return {
        ...step,
        status: 'failed',
        reason: last.error || `Task ${last.taskId} failed.`,
        summary: 'not installed',
      };
    }
    return {
      ...step,
      status: last && ['PENDING', 'RUNNING'].includes(last.status) ? 'in-progress' : 'not-started',
      reason: `${params.app} is not installed for ${params.user} from ${params.source}.`,
      summary: 'not installed',
    };
  }
  step.app = app;
  step.facts.push(
    ['Stage', app.stage],
    ['Health', app.health],
    ['Installed version', app.installedVersion],
    ['Target version', app.targetVersion],
    ['Catalogue version', app.latestVersion],
    ['App-service state', app.state],
    ['Progress', app.progress],
    ['Updated', { time: app.updatedAt }],
  );
  if (app.reason) step.facts.push(['Reason', app.reason]);
  if (app.sourceRemoved) step.notes.push('Its market source has been removed; the app keeps running.');
  const summary = `stage ${app.stage.toLowerCase()}${app.installedVersion ? ` · ${app.installedVersion}` : ''}`;
  if (app.stage === 'FAILED') {
    const failedTask = step.tasks.find((t) => t.status === 'FAILED');
    return {
      ...step,
      status: 'failed',
      reason: app.reason || failedTask?.error || 'The last operation failed.',
      summary,
    };
  }
  if (app.stage === 'UNKNOWN') return { ...step, status: 'unknown', summary };
  return { ...step, status: IN_PROGRESS_STAGES.has(app.stage) ? 'in-progress' : 'done', summary };
}
