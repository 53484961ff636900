import { checkIdArgument } from '../../domain/errors.js';
import { MAX_IDENTIFIER_LENGTH } from './status-fields.js';
import type { ChartRepoAppState, ChartRepoImageState } from './status-types.js';

/**
 * Exact-match filters on the typed chart repo lists; a filter left out (or null) matches everything,
 * an empty one is refused (it named nothing, and matched nothing).
 */
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

/**
 * No value the chart repo holds is empty or longer than an identifier, so such a filter is a
 * mistake, said so as by every argument naming an object (checkIdArgument).
 */
function bounded<F extends ChartRepoAppFilter>(filter: F): F {
  for (const [name, value] of Object.entries(filter)) checkIdArgument(name, value, MAX_IDENTIFIER_LENGTH);
  return filter;
}
