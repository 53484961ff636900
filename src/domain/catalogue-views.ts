import { ValidationError } from './errors.js';
import { closestLocale } from './locale-match.js';
import { excerpt } from './text-length.js';

/**
 * Typed views of a stored catalogue entry (ApplicationInfoEntry, market-domain.md §6.3) and of its
 * PriceConfig, for the schema. Entries come from sources this server does not control and were
 * checked only for what a row needs (catalogue-entry.ts), so any other field may be missing, null
 * or of the wrong type: every view reads defensively and answers null or an empty list for what
 * is absent or malformed, never throws. Each view reads only its own fields, so a field nobody
 * selects costs nothing.
 */

type Json = Record<string, unknown>;

/** The locale read when a text has no translation into the one asked for. */
export const FALLBACK_LOCALE = 'en-US';

/** Longest locale a client may ask for (BCP 47 tags are short; RFC 5646 advises 35 characters). */
export const MAX_LOCALE_LENGTH = 35;

const LOCALE = /^[A-Za-z]{1,8}(?:[-_][A-Za-z0-9]{1,8})*$/;

/**
 * Whether `tag` is shaped like a language tag (`en-US`, `zh_CN`, `de`) of at most
 * MAX_LOCALE_LENGTH characters: the one rule for a locale argument and an upload's `i18n/<locale>`.
 */
export function isLocaleTag(tag: string): boolean {
  return tag.length <= MAX_LOCALE_LENGTH && LOCALE.test(tag);
}

/**
 * A locale argument as given (`en-US`, `zh-CN`, `de`), or null when absent. Refuses anything
 * longer than MAX_LOCALE_LENGTH or not shaped like a language tag.
 */
export function parseLocale(locale: string | null | undefined): string | null {
  if (locale === null || locale === undefined) return null;
  if (!isLocaleTag(locale)) {
    const shown = JSON.stringify(excerpt(locale, MAX_LOCALE_LENGTH));
    throw new ValidationError(
      `Argument "locale" must be a language tag such as en-US, at most ${MAX_LOCALE_LENGTH} characters (got ${shown})`,
      [{ path: 'locale', message: `not a language tag of at most ${MAX_LOCALE_LENGTH} characters` }],
    );
  }
  return locale;
}

/** Whether a value is a JSON object (not null, not an array): the one such check of the catalogue code. */
export function isObject(value: unknown): value is Json {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** A non-empty string, else null. */
function text(value: unknown): string | null {
  return typeof value === 'string' && value !== '' ? value : null;
}

/** The non-empty strings of a list (anything else in it is skipped); [] when not a list. */
function strings(value: unknown): string[] {
  return Array.isArray(value) ? value.filter((item): item is string => typeof item === 'string' && item !== '') : [];
}

function objects(value: unknown): Json[] {
  return Array.isArray(value) ? value.filter(isObject) : [];
}

/**
 * An object's keys in code-unit order. Where several keys could answer, the choice must not
 * follow the order they were written in: PostgreSQL keeps `entry` as jsonb, which stores keys
 * shorter first, so the first of them differed from SQLite's (`title(locale: "zh")` read zh-TW on
 * one and zh-CN on the other).
 */
const sortedKeys = (object: Json) => Object.keys(object).sort();

/** The keys of a locale map that hold a non-empty text. */
const textKeys = (map: Json) => Object.keys(map).filter((key) => text(map[key]) !== null);

/** A locale map's non-empty text in `locale` or its language (closestLocale), else null. */
function inLocaleMap(map: Json, locale: string): string | null {
  const match = closestLocale(textKeys(map), locale);
  return match === undefined ? null : (map[match.key] as string);
}

/** A locale map's first non-empty text in key order. */
const firstText = (map: Json) =>
  sortedKeys(map)
    .map((key) => text(map[key]))
    .find((found) => found !== null) ?? null;

/** A locale map's best non-empty text: in `locale`, else in FALLBACK_LOCALE, else the first in key order. */
function fromLocaleMap(map: Json, locale: string): string | null {
  return inLocaleMap(map, locale) ?? inLocaleMap(map, FALLBACK_LOCALE) ?? firstText(map);
}

/** The localized texts of an entry; `i18n[locale]` keeps them under `metadata` or `spec`. */
export type LocalizedField = 'title' | 'description' | 'fullDescription' | 'upgradeDescription';

function i18nText(entry: Json, key: string, field: LocalizedField): string | null {
  const translation = isObject(entry.i18n) ? entry.i18n[key] : null;
  if (!isObject(translation)) return null;
  for (const part of [translation.metadata, translation.spec]) {
    if (isObject(part) && text(part[field]) !== null) return part[field] as string;
  }
  return null;
}

/**
 * The text closest to `locale` in the field's own locale map and `i18n` together, so that an
 * exact `i18n[zh-TW]` wins over the map's `zh-CN`; the map wins a tie (its texts are the field's own).
 */
function closestText(entry: Json, map: Json | null, translated: string[], field: LocalizedField, locale: string) {
  const own = map === null ? undefined : closestLocale(textKeys(map), locale);
  const other = closestLocale(translated, locale);
  if (map !== null && own !== undefined && (other === undefined || own.distance <= other.distance)) {
    return map[own.key] as string;
  }
  return other === undefined ? null : i18nText(entry, other.key, field);
}

/**
 * A localized text of an entry in `locale` (FALLBACK_LOCALE when null): the closest of the field's
 * locale map and `i18n` (closestLocale: the locale itself, then its language, same script first),
 * else the plain string (the source's own language), else the closest to FALLBACK_LOCALE, else
 * the map's first text in key order, else `i18n`'s.
 */
export function entryText(entry: unknown, field: LocalizedField, locale: string | null): string | null {
  if (!isObject(entry)) return null;
  const value = entry[field];
  const map = isObject(value) ? value : null;
  // The i18n keys that hold this field, in code-unit order.
  const translated = isObject(entry.i18n)
    ? sortedKeys(entry.i18n).filter((key) => i18nText(entry, key, field) !== null)
    : [];
  const first = translated[0];
  return (
    closestText(entry, map, translated, field, locale ?? FALLBACK_LOCALE) ??
    text(value) ??
    closestText(entry, map, translated, field, FALLBACK_LOCALE) ??
    (map && firstText(map)) ??
    (first === undefined ? null : i18nText(entry, first, field))
  );
}

/** A plain string field of an entry (`icon`, `developer`, `featuredImage` …), null when absent. */
export function entryString(entry: unknown, field: string): string | null {
  return isObject(entry) ? text(entry[field]) : null;
}

/** A list-of-strings field of an entry (`tags`, `promoteImage`, `screenshots`, `supportArch` …). */
export function entryStrings(entry: unknown, field: string): string[] {
  return isObject(entry) ? [...new Set(strings(entry[field]))] : [];
}

/**
 * The locales an entry has texts in: its `locale` list, else the languages of `i18n`; only those
 * shaped like a language tag (isLocaleTag): `locale: [1, {a: 2}, "../x"]` answered `["../x"]`.
 */
export function entryLocales(entry: unknown): string[] {
  if (!isObject(entry)) return [];
  const listed = entryStrings(entry, 'locale').filter(isLocaleTag);
  if (listed.length > 0) return listed;
  const i18n = isObject(entry.i18n) ? entry.i18n : {};
  return sortedKeys(i18n).filter((key) => isObject(i18n[key]) && isLocaleTag(key));
}

// Requirements

/** An amount as the entry writes it, and as a number where it parses. */
export interface Quantity {
  text: string;
  value: number | null;
}

const QUANTITY = /^([+]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?)([KMGTPE]i|[kKMGTPE]|m)?$/;

const FACTORS: Record<string, number> = {
  '': 1,
  m: 1e-3,
  k: 1e3,
  K: 1e3,
  M: 1e6,
  G: 1e9,
  T: 1e12,
  P: 1e15,
  E: 1e18,
  Ki: 2 ** 10,
  Mi: 2 ** 20,
  Gi: 2 ** 30,
  Ti: 2 ** 40,
  Pi: 2 ** 50,
  Ei: 2 ** 60,
};

/**
 * A Kubernetes quantity (`25769803776`, `4Gi`, `512M`, `500m`, `0.5`) as a number: bytes for
 * memory, disk and GPU memory, cores for CPU (`500m` is half a core). Null when it does not parse.
 */
export function parseQuantity(value: string): number | null {
  const match = QUANTITY.exec(value.trim());
  if (!match) return null;
  const [, number = '', suffix = ''] = match;
  const result = Number(number) * (FACTORS[suffix] ?? Number.NaN);
  return Number.isFinite(result) ? result : null;
}

function quantity(entry: Json, field: string): Quantity | null {
  const value = entry[field];
  // Some sources write plain numbers; a JSON number is a quantity without suffix.
  if (typeof value === 'number') {
    return Number.isFinite(value) ? { text: String(value), value: value >= 0 ? value : null } : null;
  }
  const written = text(value);
  return written === null ? null : { text: written, value: parseQuantity(written) };
}

/** What an app needs to be installed (`required*`), each as written and as a number. */
export interface Requirements {
  cpu: Quantity | null;
  memory: Quantity | null;
  disk: Quantity | null;
  gpu: Quantity | null;
}

export function entryRequirements(entry: unknown): Requirements {
  if (!isObject(entry)) return { cpu: null, memory: null, disk: null, gpu: null };
  return {
    cpu: quantity(entry, 'requiredCPU'),
    memory: quantity(entry, 'requiredMemory'),
    disk: quantity(entry, 'requiredDisk'),
    gpu: quantity(entry, 'requiredGPU'),
  };
}

// Entrances and version history

export interface Entrance {
  name: string | null;
  title: string | null;
  host: string | null;
  port: number | null;
  icon: string | null;
  authLevel: string | null;
  openMethod: string | null;
  invisible: boolean;
}

function port(value: unknown): number | null {
  const number = typeof value === 'string' && /^\d{1,5}$/.test(value) ? Number(value) : value;
  return typeof number === 'number' && Number.isInteger(number) && number >= 0 && number <= 65_535 ? number : null;
}

export function entryEntrances(entry: unknown): Entrance[] {
  if (!isObject(entry)) return [];
  return objects(entry.entrances).map((item) => ({
    name: text(item.name),
    title: text(item.title),
    host: text(item.host),
    port: port(item.port),
    icon: text(item.icon),
    authLevel: text(item.authLevel),
    openMethod: text(item.openMethod),
    invisible: item.invisible === true,
  }));
}

export interface VersionRecord {
  version: string;
  versionName: string | null;
  /** As the source wrote it (RFC 3339, often with nine fraction digits); the schema parses it. */
  mergedAt: string | null;
  /** A plain string or a locale map; read with `entryText`'s rules for a map. */
  upgradeDescription: unknown;
}

/** The entry's version history as sent (newest first in real sources); items without a version are skipped. */
export function entryVersionHistory(entry: unknown): VersionRecord[] {
  if (!isObject(entry)) return [];
  return objects(entry.versionHistory).flatMap((item) => {
    const version = text(item.version);
    if (version === null) return [];
    return [
      {
        version,
        versionName: text(item.versionName),
        mergedAt: text(item.mergedAt),
        upgradeDescription: item.upgradeDescription,
      },
    ];
  });
}

/** A history item's upgrade notes in `locale` (a plain string, or a locale map). */
export function localizedValue(value: unknown, locale: string | null): string | null {
  if (isObject(value)) return fromLocaleMap(value, locale ?? FALLBACK_LOCALE);
  return text(value);
}

// Price (price.yaml)

export interface ChainPrice {
  chain: string | null;
  tokenSymbol: string | null;
  /** The amount in the token, kept as written (a decimal string; numbers are printed). */
  amount: string | null;
  receiveWallet: string | null;
}

export interface PriceDescription {
  lang: string | null;
  title: string | null;
  description: string | null;
  icon: string | null;
}

export interface Product {
  productId: string | null;
  /** `consumable` or `subscribe` for products; null for the `paid` block (a one-time purchase). */
  type: string | null;
  prices: ChainPrice[];
  descriptions: PriceDescription[];
}

export interface Price {
  developer: string | null;
  paid: Product | null;
  products: Product[];
}

function amount(value: unknown): string | null {
  if (typeof value === 'number') return Number.isFinite(value) ? String(value) : null;
  return text(value);
}

function product(item: Json): Product {
  return {
    productId: text(item.product_id),
    type: text(item.type),
    prices: objects(item.price).map((entry) => ({
      chain: text(entry.chain),
      tokenSymbol: text(entry.token_symbol),
      amount: amount(entry.product_price),
      receiveWallet: text(entry.receive_wallet),
    })),
    descriptions: objects(item.description).map((entry) => ({
      lang: text(entry.lang),
      title: text(entry.title),
      description: text(entry.description),
      icon: text(entry.icon),
    })),
  };
}

/** A PriceConfig (the catalogue row's `price`), or null when there is none. */
export function readPrice(price: unknown): Price | null {
  if (!isObject(price)) return null;
  return {
    developer: text(price.developer),
    paid: isObject(price.paid) ? product(price.paid) : null,
    products: objects(price.products).map(product),
  };
}

/** The description of a product in `locale`: that language, else FALLBACK_LOCALE's, else the first. */
export function productDescription(item: Product, locale: string | null): PriceDescription | null {
  const langs = item.descriptions.flatMap((description) => (description.lang === null ? [] : [description.lang]));
  const lang = (closestLocale(langs, locale ?? FALLBACK_LOCALE) ?? closestLocale(langs, FALLBACK_LOCALE))?.key;
  return item.descriptions.find((description) => description.lang === lang) ?? item.descriptions[0] ?? null;
}
