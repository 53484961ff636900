import type { Db } from '../db/client.js';
import type { TaskRow } from '../db/models.js';
import type { Logger } from '../logger.js';
import type { EventBus } from '../pubsub.js';
import type { AppKey } from '../services/app-key.js';
import { deriveStage } from '../services/app-stage.js';
import type { JobStatus } from '../services/periodic-job.js';
import type { ChartRepoView, ComponentState, ComponentStatus, RuntimeApp, StateStore } from './state-store.js';

/** How many finished tasks the store loads at start (it keeps the most recent ones). */
const RECENT_FINISHED_AT_START = 100;

/** One poll-only source: it reports components (and may update the store itself). */
export interface PollSource {
  name: string;
  collect(): Promise<Omit<ComponentStatus, 'lastCheck'>[]>;
}

export interface ChartRepoProbe {
  collect(pairs: { userId: string; sourceId: string }[]): Promise<ChartRepoView>;
}

export interface CollectorOptions {
  intervalMs: number;
  /** A source that has not answered after this long counts as failed for this cycle. */
  sourceTimeoutMs: number;
}

function component(
  name: string,
  state: ComponentState,
  metrics: Record<string, unknown>,
  message: string | null = null,
) {
  return { name, healthy: state === 'RUNNING' || state === 'DISABLED', state, message, metrics };
}

/** A periodic job as a component: running while its last run succeeded. */
export function jobComponent(name: string, status: JobStatus | null) {
  if (!status) return component(name, 'STOPPED', {}, 'not started');
  return component(
    name,
    status.lastError ? 'ERROR' : 'RUNNING',
    {
      runs: status.runs,
      intervalMs: status.intervalMs,
      lastRunAt: status.lastStartedAt?.toISOString() ?? null,
      lastDurationMs: status.lastDurationMs,
    },
    status.lastError,
  );
}

/**
 * Fills the StateStore. Internal changes (the task engine, app-state events, mutations) arrive
 * through the event bus and are applied at once; poll-only sources (component health, chart
 * repo) are collected at start and every `intervalMs`, each isolated: one that fails, hangs or
 * returns garbage shows as an unhealthy component and never stops the others.
 */
export class StateCollector {
  private timer: NodeJS.Timeout | undefined;
  private readonly iterators: AsyncIterator<unknown>[] = [];
  private cycle: Promise<void> | null = null;
  private lastCycle: { at: Date; durationMs: number; errors: Record<string, string> } | null = null;

  constructor(
    private readonly db: Db,
    private readonly store: StateStore,
    private readonly bus: EventBus,
    private readonly sources: PollSource[],
    private readonly chartRepo: ChartRepoProbe | null,
    private readonly logger: Logger,
    private readonly options: CollectorOptions,
  ) {}

  async start(): Promise<void> {
    await this.loadInitialState();
    this.follow('task:updated', this.bus.subscribe('task:updated'), (event) => this.refreshTask(event.taskId));
    this.follow('app:updated', this.bus.subscribe('app:updated'), (event) => this.refreshApp(event));
    await this.collect();
    this.timer = setInterval(() => void this.collect(), this.options.intervalMs);
    this.timer.unref();
  }

  async stop(): Promise<void> {
    clearInterval(this.timer);
    for (const iterator of this.iterators.splice(0)) await iterator.return?.();
    await this.cycle;
  }

  /** One poll cycle over every source, at most one at a time. */
  collect(): Promise<void> {
    this.cycle ??= this.runCycle().finally(() => {
      this.cycle = null;
    });
    return this.cycle;
  }

  private async runCycle(): Promise<void> {
    const started = performance.now();
    const errors: Record<string, string> = {};
    const work: { name: string; run: () => Promise<void> }[] = this.sources.map((source) => ({
      name: source.name,
      run: async () => {
        for (const status of await source.collect()) this.store.putComponent({ ...status, lastCheck: new Date() });
      },
    }));
    if (this.chartRepo) {
      const probe = this.chartRepo;
      work.push({
        name: 'chart_repo',
        run: async () => {
          const status = await probe.collect(this.userSourcePairs());
          this.store.setChartRepo(status);
          this.store.putComponent({
            ...component(
              'chart_repo',
              status.reachable ? 'RUNNING' : 'ERROR',
              {
                apps: Array.isArray(status.apps) ? status.apps.length : 0,
                lastUpdate: status.lastUpdate?.toISOString() ?? null,
              },
              status.lastError,
            ),
            lastCheck: new Date(),
          });
        },
      });
    } else {
      this.store.putComponent({
        ...component('chart_repo', 'DISABLED', {}, 'CHART_REPO_URL is not set'),
        lastCheck: new Date(),
      });
    }
    await Promise.all(
      work.map(async ({ name, run }) => {
        let timer: NodeJS.Timeout | undefined;
        try {
          await Promise.race([
            run(),
            new Promise((_, reject) => {
              timer = setTimeout(
                () => reject(new Error(`no answer within ${this.options.sourceTimeoutMs} ms`)),
                this.options.sourceTimeoutMs,
              );
            }),
          ]);
        } catch (error) {
          errors[name] = error instanceof Error ? error.message : String(error);
          this.store.putComponent({ ...component(name, 'ERROR', {}, errors[name]), lastCheck: new Date() });
        } finally {
          clearTimeout(timer);
        }
      }),
    );
    this.lastCycle = { at: new Date(), durationMs: Math.round(performance.now() - started), errors };
    const failed = Object.keys(errors);
    this.store.putComponent({
      ...component(
        'collector',
        failed.length ? 'DEGRADED' : 'RUNNING',
        {
          lastCycleAt: this.lastCycle.at.toISOString(),
          lastCycleMs: this.lastCycle.durationMs,
          intervalMs: this.options.intervalMs,
          sources: this.sources.length + 1,
          errors,
          sequence: this.store.lastSequence,
        },
        failed.length ? `sources failing: ${failed.join(', ')}` : null,
      ),
      lastCheck: new Date(),
    });
  }

  private userSourcePairs(): { userId: string; sourceId: string }[] {
    const pairs = new Map<string, { userId: string; sourceId: string }>();
    for (const app of this.store.snapshot().apps)
      pairs.set(`${app.userId}/${app.sourceId}`, { userId: app.userId, sourceId: app.sourceId });
    return [...pairs.values()];
  }

  private async loadInitialState(): Promise<void> {
    const [active, recent, apps] = await Promise.all([
      this.db.task.findMany({ where: { status: { in: ['PENDING', 'RUNNING'] } } }),
      this.db.task.findMany({
        where: { status: { notIn: ['PENDING', 'RUNNING'] } },
        orderBy: { id: 'desc' },
        take: RECENT_FINISHED_AT_START,
      }),
      this.db.appState.findMany(),
    ]);
    for (const task of [...recent.reverse(), ...active]) this.store.putTask(task);
    for (const app of apps) this.store.putApp(this.withStage(app, active));
  }

  /** Applies each event of a topic in order, until stopped; a failed event is logged and skipped. */
  private follow<E>(topic: string, events: AsyncIterable<E>, apply: (event: E) => Promise<void>): void {
    const iterator = events[Symbol.asyncIterator]();
    this.iterators.push(iterator);
    void (async () => {
      for (;;) {
        const next = await iterator.next();
        if (next.done) return;
        try {
          await apply(next.value);
        } catch (error) {
          this.logger.error({ err: error, topic }, 'could not apply a change to the runtime state');
        }
      }
    })();
  }

  private async refreshTask(taskId: string): Promise<void> {
    const task = await this.db.task.findUnique({ where: { taskId } });
    if (!task) return;
    this.store.putTask(task);
    // The app's stage depends on its active task: re-derive it.
    const app = this.store.app(task);
    if (app) {
      const updated = this.withStage(app, this.activeTasks());
      if (updated.derived.stage !== app.derived.stage || updated.derived.health !== app.derived.health) {
        this.store.putApp(updated);
      }
    }
  }

  private async refreshApp(key: AppKey): Promise<void> {
    const row = await this.db.appState.findUnique({ where: { userId_sourceId_appName: key } });
    if (!row) this.store.removeApp(key);
    else this.store.putApp(this.withStage(row, this.activeTasks()));
  }

  private activeTasks(): TaskRow[] {
    return this.store.activeTasks();
  }

  private withStage(app: RuntimeApp | Omit<RuntimeApp, 'derived'>, active: TaskRow[]): RuntimeApp {
    const activeTask = active.find(
      (task) =>
        task.userId === app.userId &&
        task.sourceId === app.sourceId &&
        task.appName === app.appName &&
        ['PENDING', 'RUNNING'].includes(task.status),
    );
    return {
      ...app,
      derived: deriveStage({ state: app.state, progress: app.progress, activeTask: activeTask ?? null }),
    };
  }
}
