import type { Config } from '../config.js';
import type { Logger } from '../logger.js';
import type { DeveloperService } from './developer-service.js';
import { HttpDeveloperService } from './http-developer-service.js';
import { parseSimulatedOutcomes, SimulatedDeveloperService } from './simulated-developer-service.js';

/** The simulated developer service by default; the HTTP one when DEVELOPER_SERVICE_URL_TEMPLATE is set. */
export function createDeveloperService(
  config: Config['payments']['developerService'],
  logger: Logger,
): DeveloperService {
  if (config.kind === 'simulated')
    return new SimulatedDeveloperService({ outcomes: parseSimulatedOutcomes(config.outcomes) });
  return new HttpDeveloperService({
    urlTemplate: config.urlTemplate,
    timeoutMs: config.timeoutMs,
    logger: logger.child({ component: 'developer-service' }),
  });
}
