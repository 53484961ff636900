import { ValidationError } from '../../domain/errors.js';
import { MAX_IDENTIFIER_LENGTH } from './status-fields.js';
import type { ChartRepoAppState, ChartRepoImageState } from './status-types.js';

/** Exact-match filters on the typed chart repo lists; a filter left out (or null) matches everything. */
export interface ChartRepoAppFilter {
  userId?: string | null | undefined;
  sourceId?: string | null | undefined;
  appName?: string | null | undefined;
}

/** The app states matching every given filter, in the chart repo's order. */
export function filterAppStates(states: readonly ChartRepoAppState[], filter: ChartRepoAppFilter): ChartRepoAppState[] {
  const wanted = bounded(filter);
  return states.filter(
    (state) =>
      (wanted.userId == null || state.userId === wanted.userId) &&
      (wanted.sourceId == null || state.sourceId === wanted.sourceId) &&
      (wanted.appName == null || state.appName === wanted.appName),
  );
}

/** The image states of one app (by name), or all of them. */
export function filterImageStates(
  states: readonly ChartRepoImageState[],
  filter: Pick<ChartRepoAppFilter, 'appName'>,
): ChartRepoImageState[] {
  const { appName } = bounded(filter);
  return appName == null ? [...states] : states.filter((state) => state.appName === appName);
}

/** No value the chart repo holds is longer than an identifier, so a longer filter is a mistake, said so. */
function bounded<F extends ChartRepoAppFilter>(filter: F): F {
  for (const [name, value] of Object.entries(filter)) {
    if (typeof value === 'string' && value.length > MAX_IDENTIFIER_LENGTH) {
      throw new ValidationError(`Argument "${name}" must be at most ${MAX_IDENTIFIER_LENGTH} characters`, [
        { path: name, message: `longer than ${MAX_IDENTIFIER_LENGTH} characters` },
      ]);
    }
  }
  return filter;
}
