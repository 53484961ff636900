/** What a component says about itself (ComponentStatus, without importing the store). */
interface ComponentStatus {
  name: string;
  state: string;
  healthy: boolean;
  message: string | null;
  metrics: Record<string, unknown>;
}

/**
 * Decides which component statuses are pushed as COMPONENT_CHANGED events. `lastCheck` moves every
 * cycle, and some metrics (connection counts) nearly every cycle: pushing those to every
 * runtimeEvents subscriber made idle dashboards receive thousands of frames a second. Only what a
 * component says about itself (state, health, message) is pushed at once; metrics alone at most
 * every `metricsPushMs` (0: never; they are still read on demand).
 */
export class ComponentPushes {
  /** Each component as last pushed, and when (ms since the epoch). */
  private readonly pushed = new Map<string, { component: ComponentStatus; at: number }>();

  constructor(private readonly metricsPushMs: number) {}

  /** Whether this status is to be pushed now; if so, it counts as pushed. */
  take(component: ComponentStatus, now: number): boolean {
    const last = this.pushed.get(component.name);
    const before = last?.component;
    const says = (status: ComponentStatus) => [status.state, status.healthy, status.message];
    const push =
      !before ||
      says(before).some((value, i) => value !== says(component)[i]) ||
      // Compared with what was last pushed, so metrics that moved and then settled still go out once.
      (this.metricsPushMs > 0 &&
        now - (last?.at ?? 0) >= this.metricsPushMs &&
        JSON.stringify(before.metrics) !== JSON.stringify(component.metrics));
    if (push) this.pushed.set(component.name, { component, at: now });
    return push;
  }

  /** A removed component: should one of that name come back, its first status is pushed. */
  forget(name: string): void {
    this.pushed.delete(name);
  }
}
