/**
 * The chart repo: the cluster service that downloads and unpacks app charts and images. The
 * runtime collector polls its status per (user, source) and shows it on the dashboard and in
 * runtimeSnapshot. There is one implementation, HttpChartRepo over HTTP (CHART_REPO_URL); with
 * none configured there is no chart repo status at all.
 *
 * The nested blocks keep the chart repo's own snake_case field names, with two normalisations:
 * every timestamp field becomes an ISO string (or null when absent, unparseable or Go's zero
 * time), and the image analyzer's `average_analysis_time` becomes a number of milliseconds (or null),
 * read as Go writes a time.Duration: integer nanoseconds, or a `1m30s` string. The answer to a
 * (user, source) call keeps only that pair's app states and hydrator tasks (status-parse.ts,
 * belongsToPair). These raw blocks are the deprecated JSON fields; the same data, read once per
 * collect into typed objects with camelCase names, is in the ChartRepoTypedStatus fields (status-types.ts).
 */

import type { ChartRepoTypedStatus } from './status-types.js';

/**
 * What is known of the chart repo after a collect, kept and served by the runtime. The typed fields
 * are optional because a status built elsewhere (the runtime's empty one for a user without calls)
 * may leave them out: absent means none.
 */
export interface ChartRepoStatus extends Partial<ChartRepoTypedStatus> {
  reachable: boolean;
  /** Why the last collect failed, wholly or for some calls; carries no secret. */
  lastError: string | null;
  /** When data was last fetched successfully; kept through failures along with that data. */
  lastUpdate: Date | null;
  system: Record<string, unknown> | null;
  /** ChartRepoAppState objects, concatenated over the (user, source) pairs in the order given. */
  apps: unknown[];
  images: unknown[];
  tasks: { hydrator: Record<string, unknown> | null; imageAnalyzer: Record<string, unknown> | null } | null;
}

/** One collect: the status over every call (what admins see), and each user's over their own calls. */
export interface ChartRepoCollection {
  all: ChartRepoStatus;
  /** By user id; a user on whose behalf no call was made (no apps) has none. */
  byUser: ReadonlyMap<string, ChartRepoStatus>;
}

export interface ChartRepoPair {
  userId: string;
  sourceId: string;
}

export interface ChartRepo {
  /**
   * The status over one call per pair (no pairs: one call on nobody's behalf, which the chart repo
   * answers for everyone), and each user's over the calls made for them. Never throws: failures
   * are described in `lastError`. When every call fails, the data kept is the newer of its own last
   * good data and `held` (what the runtime shows: in cluster mode the previous leader's).
   */
  collectByUser(pairs: ChartRepoPair[], now?: Date, held?: ChartRepoCollection | null): Promise<ChartRepoCollection>;
  /** The longest a collect over `pairs` pairs can take: its calls are each bounded (CHART_REPO_TIMEOUT_MS). */
  collectBoundMs(pairs: number): number;
}
