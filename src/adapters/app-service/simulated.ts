import { randomUUID } from 'node:crypto';
import { appKeyString } from '../../domain/app-key.js';
import type { OperationRequest, OperationType } from '../../domain/operations.js';
import type { AppService, AppStateEvent, AppStateSink, OperationStatus, OperationTarget } from './port.js';

/**
 * The embedded default app service: accepts an operation with an op id, then reports the same
 * state sequence as the real one, one step every `stepMs`. Apps matching `failApps` fail at the
 * installing (or upgrading / uninstalling) step, so the demo and the tests can show failures.
 * It keeps no state across restarts, like a cluster controller that lost its work: an operation
 * of another process (one that stopped, or died) is unknown to it, so a task adopted from there
 * fails with that reason instead of being followed (see lookup).
 */

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
};
SEQUENCES.CLONE = SEQUENCES.INSTALL;

/** The step at which an injected failure happens, and the state it reports. */
const FAILURE: Record<OperationType, { atState: string; state: string }> = {
  INSTALL: { atState: 'installing', state: 'installFailed' },
  CLONE: { atState: 'installing', state: 'installFailed' },
  UPGRADE: { atState: 'upgrading', state: 'upgradeFailed' },
  UNINSTALL: { atState: 'uninstalling', state: 'uninstallFailed' },
};

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
}

export class SimulatedAppService implements AppService {
  readonly kind = 'simulated';
  private readonly running = new Map<string, RunningOperation>();
  /** The last report of each operation this process ran, by op id, oldest first (see lookup). */
  private readonly reports = new Map<string, AppStateEvent>();
  private readonly shouldFail: (appName: string) => boolean;
  private lastEventTime = 0;
  private closed = false;

  constructor(
    private readonly sink: AppStateSink,
    private readonly options: { stepMs: number; failApps: string[] },
  ) {
    this.shouldFail = matcher(options.failApps);
  }

  async start(operation: OperationRequest): Promise<{ opId: string }> {
    const opId = `sim-${randomUUID()}`;
    const run: RunningOperation = { operation, opId, current: 'pending', timer: undefined };
    this.running.set(appKeyString(operation), run);
    this.schedule(run, 0);
    return { opId };
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
    return targets.map((target): OperationStatus => {
      const report = target.opId ? this.reports.get(target.opId) : undefined;
      if (report) return { known: true, report };
      return {
        known: false,
        reason: `the simulated app service keeps its operations in memory only, and operation ${target.opId ?? '(no op id)'} of ${target.appName} ended with the server process that ran it`,
      };
    });
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
    this.lastEventTime = Math.max(Date.now(), this.lastEventTime + 1);
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
    };
    this.reports.delete(run.opId); // re-inserted last: the map stays in report order
    this.reports.set(run.opId, event);
    if (this.reports.size > REMEMBERED_OPERATIONS) this.reports.delete(this.reports.keys().next().value as string);
    await this.sink(event);
  }
}
