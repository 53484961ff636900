/**
 * Which of the locales a text is written in best answers the one a client asked for: the one rule
 * of every localized catalogue text (an entry's locale maps and `i18n`, a price's descriptions).
 */

/** A language tag's subtags, lower-cased, and the script its text is written in. */
interface Tag {
  /** The whole tag with `_` read as `-`: `zh_CN` and `zh-cn` are the same locale. */
  normalized: string;
  language: string;
  /** The script subtag; for Chinese without one, the script its region writes (`zh` alone: Simplified). */
  script: string | null;
  region: string | null;
}

/** Where Chinese is written in Traditional characters; elsewhere (`zh-CN`, `zh-SG`, bare `zh`) Simplified. */
const TRADITIONAL_REGIONS = new Set(['tw', 'hk', 'mo']);

function readTag(tag: string): Tag {
  const normalized = tag.replaceAll('_', '-').toLowerCase();
  const [language = normalized, ...subtags] = normalized.split('-');
  const script = subtags.find((subtag) => /^[a-z]{4}$/.test(subtag)) ?? null;
  const region = subtags.find((subtag) => /^(?:[a-z]{2}|\d{3})$/.test(subtag)) ?? null;
  const chinese = region !== null && TRADITIONAL_REGIONS.has(region) ? 'hant' : 'hans';
  return { normalized, language, script: script ?? (language === 'zh' ? chinese : null), region };
}

/**
 * How far `key` is from `wanted`, lower is closer; null for another language. 0: the tag itself.
 * In the same script: 1 the same region (`zh-TW` for `zh-Hant-TW`), 2 none (`de` for `de-AT`,
 * `zh-Hant` for `zh-HK`), 3 another (`zh-TW` for `zh-HK`); 4 to 6 the same in another script, so
 * a Traditional request reads Simplified text only when there is no Traditional text at all.
 */
function distance(key: Tag, wanted: Tag): number | null {
  if (key.normalized === wanted.normalized) return 0;
  if (key.language !== wanted.language) return null;
  const region = key.region === wanted.region ? 1 : key.region === null ? 2 : 3;
  return key.script === wanted.script ? region : region + 3;
}

/** The key of a text and how close its locale is to the one asked for (`distance`). */
export interface LocaleMatch {
  key: string;
  distance: number;
}

/**
 * The closest of `keys` to `locale`, the first in code-unit order among equally close ones (never
 * the order a source wrote its keys in: PostgreSQL's jsonb keeps none, so the two databases
 * answered differently); undefined when none is of its language.
 */
export function closestLocale(keys: readonly string[], locale: string): LocaleMatch | undefined {
  const wanted = readTag(locale);
  let best: LocaleMatch | undefined;
  for (const key of [...keys].sort()) {
    const found = distance(readTag(key), wanted);
    if (found !== null && (best === undefined || found < best.distance)) best = { key, distance: found };
  }
  return best;
}
