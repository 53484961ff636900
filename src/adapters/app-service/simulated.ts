import { randomUUID } from 'node:crypto';
import { type AppEntrance, entranceState, simulatedEntrance } from '../../domain/app-entrance.js';
import { type AppKey, appKeyString } from '../../domain/app-key.js';
import type { OperationRequest, OperationType } from '../../domain/operations.js';
import type { BackendResponse } from '../../domain/task-result.js';
import type { AppListing, AppService, AppStateEvent, AppStateSink, OperationStatus, OperationTarget } from './port.js';

/**
 * The embedded default app service: accepts an operation with an op id, then reports the same
 * state sequence as the real one, one step every `stepMs`. Apps matching `failApps` fail at the
 * installing (or upgrading / uninstalling) step, so the demo and the tests can show failures.
 * It keeps no state across restarts, like a cluster controller that lost its work: an operation
 * of another process (one that stopped, or died) is unknown to it, so a task adopted from there
 * fails with that reason instead of being followed (see lookup).
 *
 * Its cluster (listApps) is the stored apps (`storedApps`, read again at every listing: the
 * composition root gives it the stored app states, which every instance of a cluster writes, so
 * that comparing them with this list never finds an app of another instance gone) merged with the
 * apps it ran operations for, each as its last report where that is newer than the stored one; an
 * uninstalled app leaves it, a stopped one stays as `stopped`. Every report carries the app's
 * entrance, as the real one's `entranceStatuses` do.
 */

export interface SimulatedAppServiceOptions {
  stepMs: number;
  failApps: string[];
  /**
   * The apps the stored states say the cluster runs, read at every listing. Without it the
   * cluster is only what this process ran operations for.
   */
  storedApps?: () => Promise<AppStateEvent[]>;
  /**
   * Whether the stored states say the app was installed before the install now starting (a
   * canceled first install leaves nothing, a canceled reinstall leaves the app): one row, not the
   * whole list, since it is asked at every install. Without it, what this process reported.
   */
  installedBefore?: (key: AppKey) => Promise<boolean>;
  /**
   * The entrances the stored state holds for an app, asked when an operation starts on an app this
   * process has not reported on (after a restart): a clone keeps the titles it was given.
   */
  storedEntrances?: (key: AppKey) => Promise<AppEntrance[] | null>;
  /**
   * The clock its events' times are on: in a cluster each instance simulates the app service for
   * its own tasks, and status correction compares those times with other instances' (the
   * database's clock, DatabaseClock). Default: this machine's.
   */
  clock?: { now(): number };
}

interface Step {
  state: string;
  progress?: string;
}

const SEQUENCES: Record<OperationType, Step[]> = {
  INSTALL: [
    { state: 'pending' },
    { state: 'downloading', progress: '0' },
    { state: 'downloading', progress: '50' },
    { state: 'downloading', progress: '100' },
    { state: 'installing' },
    { state: 'initializing' },
    { state: 'running' },
  ],
  CLONE: [], // same as INSTALL, filled below
  UPGRADE: [{ state: 'upgrading' }, { state: 'initializing' }, { state: 'running' }],
  UNINSTALL: [{ state: 'uninstalling' }, { state: 'uninstalled' }],
  STOP: [{ state: 'stopping' }, { state: 'stopped' }],
  RESUME: [{ state: 'resuming' }, { state: 'running' }],
};
SEQUENCES.CLONE = SEQUENCES.INSTALL;

/** The step at which an injected failure happens, and the state it reports. */
const FAILURE: Record<OperationType, { atState: string; state: string }> = {
  INSTALL: { atState: 'installing', state: 'installFailed' },
  CLONE: { atState: 'installing', state: 'installFailed' },
  UPGRADE: { atState: 'upgrading', state: 'upgradeFailed' },
  UNINSTALL: { atState: 'uninstalling', state: 'uninstallFailed' },
  STOP: { atState: 'stopping', state: 'stopFailed' },
  RESUME: { atState: 'resuming', state: 'resumeFailed' },
};

/** States an app rests in, whatever became of an operation on it. */
const SETTLED = /^(running|stopped|uninstalled)$|failed$|canceled$/i;
/** States in which the app runs (or rests, stopped) a chart: its version is listed. */
const RUNS_CHART = /^(running|stopped)$/i;

function matcher(patterns: string[]): (appName: string) => boolean {
  const regexes = patterns.map(
    (pattern) => new RegExp(`^${pattern.replace(/[.+?^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*')}$`),
  );
  return (appName) => regexes.some((regex) => regex.test(appName));
}

/** How many operations' last reports it remembers for lookup (the oldest are forgotten first). */
const REMEMBERED_OPERATIONS = 10_000;

interface RunningOperation {
  operation: OperationRequest;
  opId: string;
  current: string;
  timer: NodeJS.Timeout | undefined;
  /** Whether the cluster had the app when the operation began: a failed first install leaves nothing. */
  hadApp: boolean;
  /** The app's entrances as its reports show them (each report sets their state). */
  entrances: AppEntrance[];
}

export class SimulatedAppService implements AppService {
  readonly kind = 'simulated';
  private readonly running = new Map<string, RunningOperation>();
  /** The last report of each operation this process ran, by op id, oldest first (see lookup). */
  private readonly reports = new Map<string, AppStateEvent>();
  /** The simulated cluster: each app's last report, by app key (see listApps). */
  private readonly apps = new Map<string, AppStateEvent>();
  /**
   * First installs this process found lost (markLost) whose failure the stored states do not show
   * yet: their task is still in flight, so the stored list leaves them out (see cluster).
   */
  private readonly lostFirstInstalls = new Set<string>();
  private readonly shouldFail: (appName: string) => boolean;
  private lastEventTime = 0;
  private closed = false;

  constructor(
    private readonly sink: AppStateSink,
    private readonly options: SimulatedAppServiceOptions,
  ) {
    this.shouldFail = matcher(options.failApps);
  }

  private now(): number {
    return this.options.clock ? this.options.clock.now() : Date.now();
  }

  async start(operation: OperationRequest): Promise<{ opId: string; response: BackendResponse }> {
    const opId = `sim-${randomUUID()}`;
    const key = appKeyString(operation);
    // Only an install asks whether the app is already in the cluster (a canceled first install
    // leaves nothing); on a failed read, what this process knows.
    const install = operation.type === 'INSTALL' || operation.type === 'CLONE';
    const hadApp = !install || (await this.installedBefore(operation));
    const entrances = install ? entrancesOfNew(operation) : await this.entrancesOf(operation);
    const run: RunningOperation = { operation, opId, current: 'pending', timer: undefined, hadApp, entrances };
    this.running.set(key, run);
    this.lostFirstInstalls.delete(key); // its own operation now says what becomes of it
    this.schedule(run, 0);
    return { opId, response: { code: 200, message: 'success', data: { uid: operation.appName, opID: opId } } };
  }

  /**
   * The entrances of an app in the cluster, as its last report showed them: a clone keeps the
   * titles it was given through a stop, a resume or an upgrade (only the clone's operation carries
   * them). After a restart, the stored ones.
   */
  private async entrancesOf(operation: OperationRequest): Promise<AppEntrance[]> {
    const { storedEntrances } = this.options;
    const known =
      this.apps.get(appKeyString(operation))?.entrances ?? (await storedEntrances?.(operation).catch(() => null));
    return known?.length ? known : entrancesOfNew(operation);
  }

  private async installedBefore(target: AppKey): Promise<boolean> {
    const own = this.apps.has(appKeyString(target));
    const { installedBefore } = this.options;
    if (!installedBefore) return own;
    return installedBefore(target).catch(() => own);
  }

  /** Every app of the simulated cluster, as its last report. */
  async listApps(): Promise<AppStateEvent[]> {
    return [...(await this.cluster()).values()].map((event) => ({ ...event }));
  }

  /** It reads its own list whole: nothing in it is ever unreadable. */
  async listAppsInFull(): Promise<AppListing> {
    return { apps: await this.listApps(), unreadable: [] };
  }

  async cancel(target: OperationTarget): Promise<void> {
    const key = appKeyString(target);
    const run = this.running.get(key);
    if (!run) return; // nothing running here any more: the engine's own bookkeeping decides
    clearTimeout(run.timer);
    this.running.delete(key);
    await this.emit(run, { state: `${run.current}Canceled` }, 'canceled by request');
  }

  /**
   * Only operations of this process are known: the simulated app service lives and dies with the
   * server process, so after a restart (or from another instance) an operation it accepted earlier
   * is simply gone, and nothing will ever report its end. Running it again is no answer: it was
   * sent once, and a task is never sent twice.
   */
  async lookup(targets: OperationTarget[]): Promise<OperationStatus[]> {
    const cluster = await this.cluster().catch(() => this.apps); // the apps a lost operation leaves failed
    return targets.map((target): OperationStatus => {
      const report = target.opId ? this.reports.get(target.opId) : undefined;
      if (report) return { known: true, report };
      const reason = `the simulated app service keeps its operations in memory only, and operation ${target.opId ?? '(no op id)'} of ${target.appName} ended with the server process that ran it`;
      this.markLost(target, cluster.get(appKeyString(target)), reason);
      return { known: false, reason };
    });
  }

  /**
   * An operation this process never ran (one of an earlier process) is lost, and its app with it:
   * from now on the cluster lists the app as failed, as the task engine shows it, unless it rests
   * in a settled state; a lost first install is listed failed too, as a failed install stays. The
   * listed failure says why, as the task's does (status correction may store it first).
   */
  private markLost(target: OperationTarget, app: AppStateEvent | undefined, reason: string) {
    const key = appKeyString(target);
    if (this.running.has(key) || (app && SETTLED.test(app.state))) return;
    if (!app && target.type !== 'INSTALL' && target.type !== 'CLONE') return;
    this.lastEventTime = Math.max(this.now(), this.lastEventTime + 1);
    const state = FAILURE[target.type].state;
    const entrances = app?.entrances?.map((entrance) => ({ ...entrance, state: entranceState(state) })) ?? [
      simulatedEntrance(target.userId, target.appName, target.appName, state),
    ];
    if (!app) this.lostFirstInstalls.add(key);
    this.apps.set(key, {
      ...(app ?? { userId: target.userId, sourceId: target.sourceId, appName: target.appName }),
      opId: target.opId,
      opType: target.type.toLowerCase(),
      state,
      progress: null,
      reason,
      message: reason,
      createTime: new Date(this.lastEventTime),
      entrances,
    });
  }

  /**
   * The cluster now: every stored app, as this process last reported it where that report is
   * newer (another instance's newer state stands), and the apps of operations running here that
   * are not stored yet. An app this process once reported on but that is no longer stored (another
   * instance uninstalled it) is not in it. A first install found lost is in it, failed, from then
   * on: until the stored states show its failure (they leave out a first install whose task is in
   * flight), from this process's record. Without stored apps, only this process's reports.
   */
  private async cluster(): Promise<Map<string, AppStateEvent>> {
    const { storedApps } = this.options;
    if (!storedApps) return this.apps;
    const cluster = new Map<string, AppStateEvent>();
    for (const event of await storedApps()) {
      const key = appKeyString(event);
      this.lostFirstInstalls.delete(key); // stored: the stored state takes over
      const own = this.apps.get(key);
      if (own && own.createTime >= event.createTime) {
        cluster.set(key, own);
        continue;
      }
      const title = event.entrances?.[0]?.title ?? event.appName;
      const entrances = event.entrances ?? [simulatedEntrance(event.userId, event.appName, title, event.state)];
      cluster.set(key, { ...event, entrances });
    }
    for (const [key, own] of this.apps) {
      if (!cluster.has(key) && (this.running.has(key) || this.lostFirstInstalls.has(key))) cluster.set(key, own);
    }
    return cluster;
  }

  async close(): Promise<void> {
    this.closed = true;
    for (const run of this.running.values()) clearTimeout(run.timer);
    this.running.clear();
  }

  private schedule(run: RunningOperation, index: number) {
    const steps = SEQUENCES[run.operation.type];
    const step = steps[index];
    if (!step || this.closed) return;
    const fire = async () => {
      if (this.running.get(appKeyString(run.operation)) !== run) return;
      const failure = FAILURE[run.operation.type];
      if (step.state === failure.atState && this.shouldFail(run.operation.appName)) {
        this.running.delete(appKeyString(run.operation));
        await this.emit(
          run,
          { state: failure.state },
          `simulated failure of ${run.operation.appName} (SIMULATED_FAIL_APPS)`,
        );
        return;
      }
      run.current = step.state;
      if (index === steps.length - 1) {
        this.running.delete(appKeyString(run.operation));
      }
      await this.emit(run, step);
      this.schedule(run, index + 1);
    };
    // The first step comes right after acceptance; with stepMs 0 the sequence still yields
    // between steps, as events from a real app service would.
    run.timer = setTimeout(() => void fire(), index === 0 ? 0 : this.options.stepMs);
  }

  private async emit(run: RunningOperation, step: Step, reason?: string) {
    // Strictly increasing event times, even within one millisecond.
    this.lastEventTime = Math.max(this.now(), this.lastEventTime + 1);
    const event: AppStateEvent = {
      userId: run.operation.userId,
      sourceId: run.operation.sourceId,
      appName: run.operation.appName,
      rawAppName: run.operation.clone?.rawAppName ?? null,
      opId: run.opId,
      opType: run.operation.type.toLowerCase(),
      state: step.state,
      progress: step.progress ?? null,
      reason: reason ?? null,
      message: reason ?? null,
      createTime: new Date(this.lastEventTime),
      // As a real app service lists a running app's chart version: status correction gives it to an
      // app that runs without one (an install that timed out here, then finished: it could not be
      // stopped). Not with a canceled or failed first install, which installed nothing.
      ...(run.operation.version && RUNS_CHART.test(step.state) ? { listedVersion: run.operation.version } : {}),
      entrances: run.entrances.map((entrance) => ({ ...entrance, state: entranceState(step.state) })),
    };
    this.updateCluster(run, event);
    this.reports.delete(run.opId); // re-inserted last: the map stays in report order
    this.reports.set(run.opId, event);
    if (this.reports.size > REMEMBERED_OPERATIONS) this.reports.delete(this.reports.keys().next().value as string);
    await this.sink(event);
  }

  /** The cluster after a report: an uninstalled app, or a first install that was canceled, leaves it. */
  private updateCluster(run: RunningOperation, event: AppStateEvent) {
    const key = appKeyString(event);
    const state = event.state.toLowerCase();
    const firstInstall = run.operation.type === 'INSTALL' || run.operation.type === 'CLONE';
    // A failed install stays, failed (as the task engine keeps its row); a canceled one leaves nothing.
    if (state === 'uninstalled' || (firstInstall && !run.hadApp && state.endsWith('canceled'))) {
      this.apps.delete(key);
    } else {
      this.apps.set(key, event);
    }
  }
}

/**
 * The entrances an install or clone publishes: one, named after the app's chart, as the original
 * app's reports name it. A clone's adds the other entrances it was given titles for (its chart's
 * entrances, which the request was checked against); each shows its given title, or the clone's.
 */
function entrancesOfNew(operation: OperationRequest): AppEntrance[] {
  const { userId, appName, clone } = operation;
  if (!clone) return [simulatedEntrance(userId, appName, appName, 'pending')];
  const titles = new Map(clone.entrances.map((entrance) => [entrance.name, entrance.title]));
  const names = [...new Set([clone.rawAppName, ...titles.keys()])];
  return names.map((name) => {
    // Each at a host of its own: the chart's entrance at the clone's, as an app's main one is.
    const host = name === clone.rawAppName ? appName : `${appName}-${name}`;
    return { ...simulatedEntrance(userId, host, titles.get(name) ?? clone.title, 'pending'), name };
  });
}
