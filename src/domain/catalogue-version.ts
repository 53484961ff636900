/**
 * Version precedence for "is an upgrade available": semver's rules, widened to the versions app
 * catalogues really carry. Charts and images are versioned `1.70.1`, `v0.3.1`, `5.104`,
 * `2024.11.7`, `240915`, `1.0.0.1` or `2.0.0-beta.2`; the `semver` package refuses half of these
 * (a `v` prefix only loosely, two or four parts or one part never), and its `coerce` drops the
 * pre-release, which would make `2.0.0-rc.1` look like `2.0.0`.
 *
 * The rules: an optional `v`/`V`, any number of dot-separated numeric parts compared one by one
 * (a missing part counts as 0, so `1.2` equals `1.2.0`), then semver's pre-release precedence
 * (`1.0.0-alpha` < `1.0.0-alpha.1` < `1.0.0-beta` < `1.0.0`); build metadata (`+…`) is ignored.
 */

const VERSION = /^[vV]?(\d+(?:\.\d+)*)(?:-([0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*))?(?:\+[0-9A-Za-z.-]*)?$/;

/** Longest version text read; catalogue versions are at most 64 characters. */
const MAX_VERSION_LENGTH = 128;

interface ParsedVersion {
  /** Numeric parts as digit strings without leading zeros (no precision limit). */
  readonly release: readonly string[];
  readonly preRelease: readonly string[];
}

function parseVersion(text: string): ParsedVersion | null {
  if (text.length > MAX_VERSION_LENGTH) return null;
  const match = VERSION.exec(text.trim());
  if (!match) return null;
  const [, release = '', preRelease] = match;
  return {
    release: release.split('.').map(stripZeros),
    preRelease: preRelease ? preRelease.split('.') : [],
  };
}

function stripZeros(digits: string): string {
  return digits.replace(/^0+(?=\d)/, '');
}

/** Two digit strings without leading zeros, as numbers of any length. */
function compareDigits(a: string, b: string): number {
  if (a.length !== b.length) return a.length < b.length ? -1 : 1;
  return a < b ? -1 : a > b ? 1 : 0;
}

const NUMERIC = /^\d+$/;

/** semver §11.4: numeric identifiers compare as numbers and sort before alphanumeric ones. */
function compareIdentifiers(a: string, b: string): number {
  const aNumeric = NUMERIC.test(a);
  const bNumeric = NUMERIC.test(b);
  if (aNumeric && bNumeric) return compareDigits(stripZeros(a), stripZeros(b));
  if (aNumeric !== bNumeric) return aNumeric ? -1 : 1;
  return a < b ? -1 : a > b ? 1 : 0;
}

/**
 * -1, 0 or 1 as `a` precedes, equals or follows `b`; null when either is not a version these
 * rules read (`latest`, an empty string): such versions cannot be ordered.
 */
export function compareVersions(a: string, b: string): -1 | 0 | 1 | null {
  const left = parseVersion(a);
  const right = parseVersion(b);
  if (!left || !right) return null;
  const parts = Math.max(left.release.length, right.release.length);
  for (let i = 0; i < parts; i += 1) {
    const order = compareDigits(left.release[i] ?? '0', right.release[i] ?? '0');
    if (order !== 0) return order < 0 ? -1 : 1;
  }
  // A release follows its own pre-releases.
  if (left.preRelease.length === 0 || right.preRelease.length === 0) {
    const order = right.preRelease.length - left.preRelease.length;
    return order === 0 ? 0 : left.preRelease.length === 0 ? 1 : -1;
  }
  const identifiers = Math.max(left.preRelease.length, right.preRelease.length);
  for (let i = 0; i < identifiers; i += 1) {
    const mine = left.preRelease[i];
    const theirs = right.preRelease[i];
    // A shorter list of identifiers that is a prefix of the other comes first.
    if (mine === undefined) return -1;
    if (theirs === undefined) return 1;
    const order = compareIdentifiers(mine, theirs);
    if (order !== 0) return order < 0 ? -1 : 1;
  }
  return 0;
}

/** Whether `candidate` is a newer version than `current` (false when either cannot be ordered). */
export function isNewerVersion(candidate: string, current: string): boolean {
  return compareVersions(candidate, current) === 1;
}

/**
 * Helm's rule for a chart's version (`helm lint`): SemVer 2 as its semver library reads it, with a
 * leading `v` and missing minor or patch allowed (`1.10` is 1.10.0). An app's version is its
 * chart's: it names the chart file (`<name>-<version>.tgz`) and is sent to the app service, so
 * `../../etc/x` or one with a line break must never be stored, whether a market source serves it
 * (entry and version history), the bundled catalogue file holds it or a chart upload carries it.
 * Stricter than the order above (no fourth part), as Helm is: the real catalogues seen (the
 * official one, a public third-party one, the bundled file) have no version it refuses.
 */
const CHART_VERSION = /^v?\d+(\.\d+)?(\.\d+)?(-[0-9A-Za-z-]+(\.[0-9A-Za-z-]+)*)?(\+[0-9A-Za-z-]+(\.[0-9A-Za-z-]+)*)?$/;

/** How a refusal says that a version breaks CHART_VERSION's rule. */
export const NOT_A_CHART_VERSION = 'is not a SemVer version (e.g. 1.2.3)';

/** Whether `version` is one an app may carry (CHART_VERSION). */
export function isChartVersion(version: string): boolean {
  return CHART_VERSION.test(version);
}
