import type { AppKey } from '../../domain/app-key.js';
import type { Config } from '../../platform/config.js';
import type { Logger } from '../../platform/logger.js';
import { HttpAppService } from './http.js';
import type { AppEntrance, AppService, AppStateEvent, AppStateSink } from './port.js';
import { SimulatedAppService } from './simulated.js';

export interface AppServiceExtras {
  /** For the simulated one: the stored apps, read at every listing (see SimulatedAppServiceOptions). */
  storedApps?: () => Promise<AppStateEvent[]>;
  /** For the simulated one: whether an app was installed before (see SimulatedAppServiceOptions). */
  installedBefore?: (key: AppKey) => Promise<boolean>;
  /** For the simulated one: an app's stored entrances (see SimulatedAppServiceOptions). */
  storedEntrances?: (key: AppKey) => Promise<AppEntrance[] | null>;
  /** For the simulated one: the clock of its events' times (see SimulatedAppServiceOptions). */
  clock?: { now(): number };
}

/** The simulated app service by default; the real one over HTTP when APP_SERVICE_URL is set. */
export function createAppService(
  config: Config['appService'],
  sink: AppStateSink,
  logger: Logger,
  extras: AppServiceExtras = {},
): AppService {
  if (config.kind === 'simulated') {
    return new SimulatedAppService(sink, {
      stepMs: config.stepMs,
      failApps: config.failApps,
      ...(extras.storedApps ? { storedApps: extras.storedApps } : {}),
      ...(extras.installedBefore ? { installedBefore: extras.installedBefore } : {}),
      ...(extras.storedEntrances ? { storedEntrances: extras.storedEntrances } : {}),
      ...(extras.clock ? { clock: extras.clock } : {}),
    });
  }
  return new HttpAppService({
    baseUrl: config.url,
    ...(config.token ? { token: config.token } : {}),
    timeoutMs: config.timeoutMs,
    repoUrl: config.repoUrl,
    logger: logger.child({ component: 'app-service' }),
  });
}
