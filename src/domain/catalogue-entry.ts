import { z } from 'zod';

/**
 * A catalogue entry: the ApplicationInfoEntry a market source serves (market-domain.md §6.3),
 * and what one catalogue row keeps of it. The same rules read every way an entry arrives: a
 * sync from a remote source, the bundled catalogue file, an uploaded chart. The entry is stored
 * whole (`CatalogApp.entry`); the columns are what lists filter and sort on.
 */

/** App names as the install mutation accepts them (operation-service's APP_NAME), and no longer. */
const APP_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;

/** Longest text kept in a column (title, description); the whole text stays in the entry. */
const MAX_COLUMN_TEXT = 1000;

/** Most categories an entry may name; more is garbage, not a catalogue. */
const MAX_CATEGORIES = 32;

/** The locale read when a text has no translation into the one asked for. */
export const FALLBACK_LOCALE = 'en-US';

/** A text that is either one string or a translation per locale (`{ "en-US": "…" }`). */
const localizedText = z.union([z.string(), z.record(z.string(), z.string())]);

/**
 * What must hold for an object to be taken as an entry. Everything else in it is kept as sent
 * (`loose`): sources add fields over time and frontends may read them through `entry`.
 */
const entryShape = z.looseObject({
  name: z.string().regex(APP_NAME, 'name may contain letters, digits, ".", "_" and "-" (at most 128)'),
  version: z.string().min(1).max(64),
  cfgType: z.string().max(32).optional(),
  title: localizedText.optional(),
  description: localizedText.optional(),
  categories: z.array(z.string().max(128)).max(MAX_CATEGORIES).nullish(),
  versionHistory: z.array(z.looseObject({ version: z.string().max(64) })).nullish(),
  i18n: z.record(z.string(), z.unknown()).nullish(),
  price: z.record(z.string(), z.unknown()).nullish(),
});

export type CatalogueEntry = z.infer<typeof entryShape>;

/** What a catalogue row holds besides its source, id and entry: the columns lists read. */
export interface CatalogueRow {
  appId: string;
  name: string;
  version: string;
  /** Every installable version, newest first (the entry's version first). */
  versions: string[];
  cfgType: string;
  title: string | null;
  description: string | null;
  searchText: string;
  paid: boolean;
  /** The PriceConfig (`price.yaml`), or null for a free app. */
  price: Record<string, unknown> | null;
  categories: string[];
  entry: CatalogueEntry;
}

export type EntryReading = { ok: true; row: CatalogueRow } | { ok: false; reason: string };

/**
 * Reads one entry as served under `appId`. Sources send either the entry itself (with an optional
 * `price`) or the AppInfo wrapper `{ app_entry, price }`; both are accepted. A reason comes back
 * for anything that is not an entry (it names the first field at fault).
 */
export function readCatalogueEntry(appId: string, served: unknown): EntryReading {
  let candidate = served;
  let price: unknown;
  if (isObject(served) && isObject(served.app_entry)) {
    candidate = served.app_entry;
    price = served.price;
  }
  const parsed = entryShape.safeParse(candidate);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    return { ok: false, reason: `app ${appId}: ${issue?.path.join('.') || 'entry'} ${issue?.message ?? 'is invalid'}` };
  }
  const entry = parsed.data;
  const priceConfig = isObject(price) ? price : (entry.price ?? null);
  const title = localized(entry.title, FALLBACK_LOCALE) ?? i18nText(entry, 'title');
  const description = localized(entry.description, FALLBACK_LOCALE) ?? i18nText(entry, 'description');
  const history = (entry.versionHistory ?? []).map((item) => item.version);
  return {
    ok: true,
    row: {
      appId,
      name: entry.name,
      version: entry.version,
      versions: [...new Set([entry.version, ...history])],
      cfgType: entry.cfgType ?? 'app',
      title: clip(title),
      description: clip(description),
      searchText: [entry.name, title, description]
        .filter(Boolean)
        .join(' ')
        .toLowerCase()
        .slice(0, 3 * MAX_COLUMN_TEXT),
      paid: isPaid(priceConfig),
      price: priceConfig,
      categories: [...new Set(entry.categories ?? [])],
      entry,
    },
  };
}

/**
 * The text of a localized field in `locale`: the locale itself, then its language alone (`de`
 * for `de-AT`), then FALLBACK_LOCALE, then the first translation there is.
 */
export function localized(value: string | Record<string, string> | undefined | null, locale: string): string | null {
  if (value === undefined || value === null) return null;
  if (typeof value === 'string') return value;
  const language = locale.split('-')[0] ?? locale;
  const match =
    value[locale] ??
    Object.entries(value).find(([key]) => key.split('-')[0] === language)?.[1] ??
    value[FALLBACK_LOCALE] ??
    Object.values(value)[0];
  return match ?? null;
}

/** `i18n[FALLBACK_LOCALE].metadata[field]`, where sources that send plain titles keep translations. */
function i18nText(entry: CatalogueEntry, field: 'title' | 'description'): string | null {
  const translation = entry.i18n?.[FALLBACK_LOCALE];
  if (!isObject(translation) || !isObject(translation.metadata)) return null;
  const text = translation.metadata[field];
  return typeof text === 'string' ? text : null;
}

/** Whether a PriceConfig asks for payment before install: a `paid` block or any product. */
export function isPaid(price: Record<string, unknown> | null): boolean {
  if (!price) return false;
  if (isObject(price.paid)) return true;
  return Array.isArray(price.products) && price.products.length > 0;
}

function clip(text: string | null): string | null {
  return text === null ? null : text.slice(0, MAX_COLUMN_TEXT);
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
