/**
 * The runtime stage and health of an app: a display-only projection of the raw app-service
 * state and the app's active task. This is the one place it is decided.
 *
 * Two deliberate departures from the original substring rules, which showed an app being
 * removed as "installing" (`uninstalling` contains `installing`) and one still initialising as
 * healthy and running: `uninstalling` → UNINSTALLING, `upgrading` → UPGRADING and
 * `initializing` → INSTALLING, each with unknown health.
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

function fromState(raw: string): StageAndHealth {
  const state = raw.toLowerCase();
  if (state === '') return { stage: 'RUNNING', health: 'HEALTHY' };
  if (['failed', 'error', 'canceled', 'cancelled'].some((word) => state.includes(word))) {
    return { stage: 'FAILED', health: 'UNHEALTHY' };
  }
  if (state.includes('stopped')) return { stage: 'STOPPED', health: 'UNHEALTHY' };
  if (state.includes('running')) return { stage: 'RUNNING', health: 'HEALTHY' };
  if (FETCHING_WORDS.some((word) => state.includes(word))) return { stage: 'FETCHING', health: 'UNKNOWN' };
  if (state.includes('uninstalling')) return { stage: 'UNINSTALLING', health: 'UNKNOWN' };
  if (state.includes('upgrading')) return { stage: 'UPGRADING', health: 'UNKNOWN' };
  if (state.includes('installing') || state.includes('initializing')) return { stage: 'INSTALLING', health: 'UNKNOWN' };
  return { stage: 'RUNNING', health: 'HEALTHY' };
}

const STAGE_OF_TASK: Record<string, AppStage | undefined> = {
  INSTALL: 'INSTALLING',
  CLONE: 'INSTALLING',
  UPGRADE: 'UPGRADING',
  UNINSTALL: 'UNINSTALLING',
  // CANCEL tasks do not change what the app is doing.
};

export function deriveStage({ state, progress, activeTask }: StageInput): StageAndHealth {
  let result = fromState(state);
  if (result.stage === 'RUNNING' && progress && FETCHING_WORDS.some((w) => progress.toLowerCase().includes(w))) {
    result = { stage: 'FETCHING', health: 'UNKNOWN' };
  }
  const taskStage = activeTask ? STAGE_OF_TASK[activeTask.type] : undefined;
  if (activeTask && taskStage) {
    // A running task decides the stage; a pending one only while nothing more specific is known.
    if (activeTask.status === 'RUNNING') return { stage: taskStage, health: 'UNKNOWN' };
    if (activeTask.status === 'PENDING' && (result.stage === 'FETCHING' || result.stage === 'RUNNING')) {
      return { stage: taskStage, health: result.health };
    }
  }
  return result;
}
