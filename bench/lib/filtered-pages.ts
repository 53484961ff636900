import type { Viewer } from '../../src/auth/viewer.js';
import type { Connection, PageArgs } from '../../src/services/pagination.js';

/** A service's list, as the scale scripts call it. */
type List<Filter> = (viewer: Viewer, filter: Filter, page: PageArgs) => Promise<Connection<unknown>>;

/**
 * For each filter, one page (first: 20) and its totalCount, three times, printed as one line of
 * milliseconds: what bench/derived-filter-scale.ts and bench/payment-status-scale.ts report.
 */
export async function timeFilteredPages<Filter>(viewer: Viewer, list: List<Filter>, filters: readonly Filter[]) {
  for (const filter of filters) {
    const times: string[] = [];
    let total = 0;
    for (let i = 0; i < 3; i += 1) {
      const t0 = performance.now();
      const page = await list(viewer, filter, { first: 20 });
      total = await page.totalCount();
      times.push((performance.now() - t0).toFixed(0));
    }
    console.log(`${JSON.stringify(filter)} first:20 + totalCount ${total}: ${times.join(', ')} ms`);
  }
}
