import type { Config } from '../../platform/config.js';
import type { Logger } from '../../platform/logger.js';
import { HttpAppService } from './http.js';
import type { AppService, AppStateSink } from './port.js';
import { SimulatedAppService } from './simulated.js';

/** The simulated app service by default; the real one over HTTP when APP_SERVICE_URL is set. */
export function createAppService(config: Config['appService'], sink: AppStateSink, logger: Logger): AppService {
  if (config.kind === 'simulated') return new SimulatedAppService(sink, config);
  return new HttpAppService({
    baseUrl: config.url,
    ...(config.token ? { token: config.token } : {}),
    timeoutMs: config.timeoutMs,
    repoUrl: config.repoUrl,
    logger: logger.child({ component: 'app-service' }),
  });
}
