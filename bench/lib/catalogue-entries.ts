/**
 * The catalogue of the `catalogue` benchmark (bench/catalogue-sync.ts): `count` plausible
 * ApplicationInfoEntry objects built on the fake market source's fakeEntry, made richer than its
 * defaults so that the rows are the size of real ones: title, description and i18n metadata in four
 * locales (a few hundred characters of description each), one to three categories, one to three
 * entrances, a version history of three to seven versions with upgrade notes, and a price
 * (fakePrice, two payment chains) on every fifth app. Deterministic: the same count gives the same
 * entries in every process.
 */
import { fakeEntry, fakePrice } from '../../test/support/fake-market-source.js';

const LOCALES = ['en-US', 'zh-CN', 'de-DE', 'fr-FR'] as const;
const CATEGORIES = [
  'Productivity',
  'Utilities',
  'Entertainment',
  'Developer Tools',
  'AI',
  'Social Network',
  'Lifestyle',
  'Blockchain',
  'Fun',
  'Creativity',
];
const ORIGIN = 'https://fake-market.example';
const LOREM =
  'It keeps your data on your own Olares device, syncs across your clients, and works offline. Self-hosted, private by default, with sharing, search, backups and an API for automation.';

export function benchAppName(index: number): string {
  return `benchapp-${String(index).padStart(5, '0')}`;
}

export function benchEntries(count: number): Record<string, unknown>[] {
  return Array.from({ length: count }, (_, index) => benchEntry(index));
}

function benchEntry(index: number): Record<string, unknown> {
  const name = benchAppName(index);
  const title = `Bench App ${index}`;
  const major = 1 + (index % 4);
  // Newest first; the entry's version is the newest.
  const versions = Array.from({ length: 3 + (index % 5) }, (_, k) => `${major}.${k}.${index % 3}`).reverse();
  const version = versions[0] as string;
  const text = (locale: string, what: string) => `${title} (${locale}) ${what}. ${LOREM}`;
  const perLocale = (what: string) => Object.fromEntries(LOCALES.map((locale) => [locale, text(locale, what)]));
  const categories = Array.from(
    { length: 1 + (index % 3) },
    (_, k) => CATEGORIES[(index + k * 3) % CATEGORIES.length] as string,
  );
  const entrances = Array.from({ length: 1 + (index % 3) }, (_, k) => ({
    name: k === 0 ? name : `${name}-${k}`,
    host: k === 0 ? name : `${name}-${k}`,
    port: 8080 + k,
    title: k === 0 ? title : `${title} admin ${k}`,
    icon: `${ORIGIN}/icons/${name}.png`,
    authLevel: k === 0 ? 'private' : 'public',
    invisible: false,
    openMethod: 'window',
  }));
  const versionHistory = versions.map((v, k) => ({
    appName: name,
    version: v,
    versionName: v,
    mergedAt: `2026-01-${String(15 - k).padStart(2, '0')}T09:30:00.250000000Z`,
    upgradeDescription: `Fixes and improvements in ${v}: faster start, new settings page, translations updated.`,
  }));
  return fakeEntry(name, {
    version,
    versionName: version,
    chartName: `${name}-${version}.tgz`,
    title: Object.fromEntries(LOCALES.map((locale) => [locale, `${title} ${locale === 'en-US' ? '' : locale}`.trim()])),
    description: perLocale('does one thing well'),
    fullDescription: perLocale('in full'),
    upgradeDescription: perLocale(`what is new in ${version}`),
    locale: [...LOCALES],
    i18n: Object.fromEntries(
      LOCALES.map((locale) => [
        locale,
        {
          metadata: { title: `${title} ${locale}`, description: text(locale, 'does one thing well') },
          entrances: entrances.map((entrance) => ({ name: entrance.name, title: `${entrance.title} ${locale}` })),
        },
      ]),
    ),
    categories,
    tags: ['bench', categories[0], `tag-${index % 17}`],
    developer: `Developer ${index % 50}`,
    entrances,
    versionHistory,
    ...(index % 5 === 0 ? { price: fakePrice({ productId: `license-${index}` }) } : {}),
  });
}
