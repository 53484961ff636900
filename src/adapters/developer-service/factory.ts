import type { Config } from '../../platform/config.js';
import type { Logger } from '../../platform/logger.js';
import { HttpDeveloperService } from './http.js';
import { NoDeveloperService } from './none.js';
import type { DeveloperService } from './port.js';
import { SimulatedDeveloperService } from './simulated.js';

/** The HTTP developer service when DEVELOPER_SERVICE_URL_TEMPLATE is set; else simulated or none (config.ts). */
export function createDeveloperService(
  config: Config['payments']['developerService'],
  logger: Logger,
): DeveloperService {
  if (config.kind === 'none') return new NoDeveloperService();
  if (config.kind === 'simulated') return new SimulatedDeveloperService({ outcomes: config.outcomes });
  return new HttpDeveloperService({
    urlTemplate: config.urlTemplate,
    timeoutMs: config.timeoutMs,
    logger: logger.child({ component: 'developer-service' }),
  });
}
