/**
 * The runtime stage and health of an app: a display-only projection of the raw app-service
 * state and the app's active task. This is the one place it is decided.
 *
 * Two deliberate departures from the original substring rules, which showed an app being
 * removed as "installing" (`uninstalling` contains `installing`) and one still initialising as
 * healthy and running: `uninstalling` → UNINSTALLING, `upgrading` → UPGRADING and
 * `initializing` → INSTALLING, each with unknown health. Stop and resume have their own
 * transitional stages too: `stopping` → STOPPING, `resuming` → RESUMING (checked before
 * `running`/`stopped`, which they do not contain, but `stopFailed` must stay FAILED).
 */

export const APP_STAGES = [
  'UNKNOWN',
  'FETCHING',
  'HYDRATING',
  'INSTALLING',
  'RUNNING',
  'UPGRADING',
  'UNINSTALLING',
  'FAILED',
  'STOPPED',
  'STOPPING',
  'RESUMING',
] as const;
export type AppStage = (typeof APP_STAGES)[number];

export const HEALTHS = ['HEALTHY', 'UNHEALTHY', 'UNKNOWN'] as const;
export type Health = (typeof HEALTHS)[number];

export interface StageInput {
  /** Raw app-service state, e.g. `running`, `downloading`, `installFailed`; '' = operation pending. */
  state: string;
  /** Raw progress text of the state row. */
  progress?: string | null;
  /** The app's pending or running task, if any. */
  activeTask?: { type: string; status: string } | null;
}

export interface StageAndHealth {
  stage: AppStage;
  health: Health;
}

const FETCHING_WORDS = ['downloading', 'fetching', 'syncing'];

/** The words (lower case) whose presence in a RUNNING app's progress makes it FETCHING. */
export const PROGRESS_FETCHING_WORDS: readonly string[] = FETCHING_WORDS;

/**
 * Whether a state says the app service's cancel of an operation failed (`installingCancelFailed`,
 * `upgradingCancelFailed`): its cancel took the app over and the operation does not go on; from
 * there it only cancels again or uninstalls. Shown FAILED, by the failure words.
 */
export function isCancelFailure(state: string): boolean {
  return state.toLowerCase().endsWith('cancelfailed');
}

/**
 * Whether a state says a first install failed (`downloadFailed`, `installFailed`, this server's
 * `cloneFailed`): the app service holds nothing of the app, so it can be installed again. Any
 * other failure (`upgradeFailed`, `uninstallFailed`, `stopFailed`, a failed cancel) leaves the app
 * there: an install over it was refused by the app service and overwrote the real failure
 * (beclab/Olares#3440).
 */
export function isFailedFirstInstall(state: string): boolean {
  return /^(download|install|clone)(ing)?failed$/i.test(state);
}

const RUNNING: StageAndHealth = { stage: 'RUNNING', health: 'HEALTHY' };
const STOPPED: StageAndHealth = { stage: 'STOPPED', health: 'UNHEALTHY' };
const UNKNOWN: StageAndHealth = { stage: 'UNKNOWN', health: 'UNKNOWN' };

/**
 * A canceled operation on an installed app leaves the app as it was: a canceled stop a running
 * app, a canceled resume a stopped one. Shown as FAILED (the original's substring rule), such an
 * app could be neither stopped nor resumed again. A canceled upgrade or uninstall leaves it as it
 * was before, running or stopped, which the state does not say: UNKNOWN until the app service
 * reports again (status correction asks it).
 */
const CANCELED_LEAVES: Record<string, StageAndHealth> = {
  stoppingcanceled: RUNNING,
  stopcanceled: RUNNING,
  resumingcanceled: STOPPED,
  resumecanceled: STOPPED,
  upgradingcanceled: UNKNOWN,
  upgradecanceled: UNKNOWN,
  uninstallingcanceled: UNKNOWN,
  uninstallcanceled: UNKNOWN,
};

function fromState(raw: string): StageAndHealth {
  const state = raw.toLowerCase();
  if (state === '') return RUNNING;
  const canceled = CANCELED_LEAVES[state.replace('cancelled', 'canceled')];
  if (canceled) return canceled;
  if (['failed', 'error', 'canceled', 'cancelled'].some((word) => state.includes(word))) {
    return { stage: 'FAILED', health: 'UNHEALTHY' };
  }
  if (state.includes('stopped')) return STOPPED;
  if (state.includes('stopping')) return { stage: 'STOPPING', health: 'UNKNOWN' };
  if (state.includes('resuming')) return { stage: 'RESUMING', health: 'UNKNOWN' };
  if (state.includes('running')) return RUNNING;
  if (FETCHING_WORDS.some((word) => state.includes(word))) return { stage: 'FETCHING', health: 'UNKNOWN' };
  if (state.includes('uninstalling')) return { stage: 'UNINSTALLING', health: 'UNKNOWN' };
  if (state.includes('upgrading')) return { stage: 'UPGRADING', health: 'UNKNOWN' };
  if (state.includes('installing') || state.includes('initializing')) return { stage: 'INSTALLING', health: 'UNKNOWN' };
  // `pending` with no task of ours, `uninstalled` (its row goes, see app-state-reports.ts), or a
  // word outside the vocabulary (`crashLoopBackOff`): the original's fall-through said RUNNING and
  // HEALTHY, which no such state tells.
  return UNKNOWN;
}

const STAGE_OF_TASK: Record<string, AppStage | undefined> = {
  INSTALL: 'INSTALLING',
  CLONE: 'INSTALLING',
  UPGRADE: 'UPGRADING',
  UNINSTALL: 'UNINSTALLING',
  STOP: 'STOPPING',
  RESUME: 'RESUMING',
  // CANCEL tasks do not change what the app is doing.
};

export function deriveStage({ state, progress, activeTask }: StageInput): StageAndHealth {
  let result = fromState(state);
  if (result.stage === 'RUNNING' && progress && FETCHING_WORDS.some((w) => progress.toLowerCase().includes(w))) {
    result = { stage: 'FETCHING', health: 'UNKNOWN' };
  }
  const taskStage = activeTask ? STAGE_OF_TASK[activeTask.type] : undefined;
  if (activeTask && taskStage) {
    // A stop or resume is what the app is doing from the moment it is asked for: the app's reported
    // state (running, stopped) is what it is leaving.
    if (activeTask.type === 'STOP' || activeTask.type === 'RESUME') return { stage: taskStage, health: 'UNKNOWN' };
    // A running task decides the stage; a pending one only while nothing more specific is known.
    if (activeTask.status === 'RUNNING') return { stage: taskStage, health: 'UNKNOWN' };
    const vague = result.stage === 'FETCHING' || result.stage === 'RUNNING' || result.stage === 'UNKNOWN';
    if (activeTask.status === 'PENDING' && vague) {
      return { stage: taskStage, health: result.health };
    }
  }
  return result;
}

/**
 * What deriveStage gives a row with this state and no active task: `plain` when its progress names
 * none of PROGRESS_FETCHING_WORDS, `fetching` when it names one (progress is read for nothing else).
 * So a stage or health filter can only match a row whose state has a matching outcome, or one with an
 * active task: the candidates `apps` reads before applying deriveStage (installed-app-service.ts).
 */
export function outcomesOfState(state: string): { plain: StageAndHealth; fetching: StageAndHealth } {
  return { plain: deriveStage({ state }), fetching: deriveStage({ state, progress: FETCHING_WORDS[0] as string }) };
}
