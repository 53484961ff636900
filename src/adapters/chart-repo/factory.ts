import type { Config } from '../../platform/config.js';
import type { Logger } from '../../platform/logger.js';
import { HttpChartRepo } from './http.js';
import type { ChartRepo } from './port.js';

/** The chart repo over HTTP when CHART_REPO_URL is set; none otherwise (there is no simulated one). */
export function createChartRepo(config: Config['runtime'], logger: Logger): ChartRepo | null {
  if (!config.chartRepoUrl) return null;
  return new HttpChartRepo({ baseUrl: config.chartRepoUrl, timeoutMs: config.chartRepoTimeoutMs, logger });
}
