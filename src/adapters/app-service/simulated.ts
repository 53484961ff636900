import { randomUUID } from 'node:crypto';
import { appKeyString } from '../../domain/app-key.js';
import type { OperationRequest, OperationType } from '../../domain/operations.js';
import type { AppService, AppStateEvent, AppStateSink, OperationTarget } from './port.js';

/**
 * The embedded default app service: accepts an operation with an op id, then reports the same
 * state sequence as the real one, one step every `stepMs`. Apps matching `failApps` fail at the
 * installing (or upgrading / uninstalling) step, so the demo and the tests can show failures.
 * It keeps no state across restarts, like a cluster controller that lost its work.
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

interface RunningOperation {
  operation: OperationRequest;
  opId: string;
  current: string;
  timer: NodeJS.Timeout | undefined;
}

export class SimulatedAppService implements AppService {
  readonly kind = 'simulated';
  private readonly running = new Map<string, RunningOperation>();
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
    await this.sink(event);
  }
}
