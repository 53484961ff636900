import type { Config } from '../../platform/config.js';
import type { Logger } from '../../platform/logger.js';
import { HttpDeveloperService } from './http.js';
import type { DeveloperService } from './port.js';
import { SimulatedDeveloperService } from './simulated.js';

/** The simulated developer service by default; the HTTP one when DEVELOPER_SERVICE_URL_TEMPLATE is set. */
export function createDeveloperService(
  config: Config['payments']['developerService'],
  logger: Logger,
): DeveloperService {
  if (config.kind === 'simulated') return new SimulatedDeveloperService({ outcomes: config.outcomes });
  return new HttpDeveloperService({
    urlTemplate: config.urlTemplate,
    timeoutMs: config.timeoutMs,
    logger: logger.child({ component: 'developer-service' }),
  });
}
