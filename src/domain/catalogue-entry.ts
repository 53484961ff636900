import { z } from 'zod';
import { APP_NAME, APP_NAME_RULE, MAX_APP_NAME_LENGTH } from './app-key.js';
import { isChartVersion, NOT_A_CHART_VERSION } from './catalogue-version.js';
import { entryText, FALLBACK_LOCALE, isObject } from './catalogue-views.js';
import { entryFieldProblem } from './entry-fields.js';
import { searchFold } from './search-fold.js';
import { clipUnits } from './text-length.js';

/**
 * A catalogue entry: the ApplicationInfoEntry a market source serves (market-domain.md §6.3),
 * and what one catalogue row keeps of it. The same rules read every way an entry arrives: a
 * sync from a remote source, the bundled catalogue file, an uploaded chart. The entry is stored
 * whole (`CatalogApp.entry`); the columns are what lists filter and sort on.
 */

/** Longest text kept in a column (title, description); the whole text stays in the entry. */
const MAX_COLUMN_TEXT = 1000;

/** Most categories an entry may name; more is garbage, not a catalogue. */
const MAX_CATEGORIES = 32;
/** Longest version, cfgType and category name (of the entry and its history). */
const MAX_VERSION = 64;
const MAX_CFG_TYPE = 32;
const MAX_CATEGORY = 128;

/**
 * An app's type (`olaresManifest.type`: `app`, `middleware`, `recommend`, …), sent to the app
 * service as `cfgType`: a lowercase name, or empty (a Go source's unset field). Any text was
 * taken: an upload's `../../evil` was stored and sent on.
 */
const CFG_TYPE = /^(?:[a-z][a-z0-9-]*)?$/;
const CFG_TYPE_RULE = `must be a lowercase name (a-z, 0-9, "-"), at most ${MAX_CFG_TYPE} characters`;

/**
 * Largest entry a row keeps, as UTF-8 JSON text (the entry and its price). Real entries are a few
 * KiB, the longest (full descriptions in a dozen languages, long version histories) tens of KiB.
 * Past this an entry is garbage or an attack: it would swell the sync transaction, the row and
 * every read of `entry`. It matches the largest manifest an upload may carry (chart-package.ts).
 */
export const MAX_ENTRY_BYTES = 256 * 1024;

/** Deepest nesting of arrays and objects in a stored value (PostgreSQL's jsonb and every reader recurse). */
export const MAX_ENTRY_DEPTH = 32;

/**
 * An app's version, the entry's own and each of its history's: one it may be installed at, so one
 * that can name a chart file (isChartVersion). A history item that breaks the rule refuses the
 * whole entry rather than being dropped: the entry is stored as served (its history is read back
 * through `versionHistory`), a too long one already refused it, and a refused entry of a stored
 * app keeps the stored row, the reason on the sync's lastError.
 */
function chartVersion() {
  return z
    .string()
    .min(1, 'must not be empty')
    .max(MAX_VERSION, `must be at most ${MAX_VERSION} characters`)
    .refine(isChartVersion, NOT_A_CHART_VERSION);
}

/** A text that is either one string or a translation per locale (`{ "en-US": "…" }`). */
const localizedText = z.union([z.string(), z.record(z.string(), z.string())], {
  error: 'must be a text or an object of texts by locale',
});

/**
 * What must hold for an object to be taken as an entry. Everything else in it is kept as sent
 * (`loose`): sources add fields over time and frontends may read them through `entry`.
 */
const entryShape = z.looseObject({
  name: z.string().regex(APP_NAME, `${APP_NAME_RULE} (at most ${MAX_APP_NAME_LENGTH})`),
  version: chartVersion(),
  cfgType: z.string().max(MAX_CFG_TYPE, CFG_TYPE_RULE).regex(CFG_TYPE, CFG_TYPE_RULE).optional(),
  // null: none (a Go source marshals an empty map so); its texts may be in i18n.
  title: localizedText.nullish(),
  description: localizedText.nullish(),
  categories: z
    .array(z.string().max(MAX_CATEGORY, `must be at most ${MAX_CATEGORY} characters`))
    .max(MAX_CATEGORIES, `must list at most ${MAX_CATEGORIES}`)
    .nullish(),
  versionHistory: z.array(z.looseObject({ version: chartVersion() })).nullish(),
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
 * for anything that is not an entry (it names the first field at fault), and for an entry that
 * could not be stored alike on both databases (`unstorable`) or is over MAX_ENTRY_BYTES: a sync
 * rejects that one app and stores the others.
 */
export function readCatalogueEntry(appId: string, served: unknown): EntryReading {
  let candidate = served;
  let price: unknown;
  if (isObject(served) && isObject(served.app_entry)) {
    candidate = served.app_entry;
    price = served.price;
  }
  // Before anything else reads it: the same entry must be storable on SQLite and PostgreSQL alike.
  const texts = storableText(candidate, isObject(price) ? price : undefined);
  if (typeof texts === 'string') return { ok: false, reason: `app ${appId}: ${texts}` };
  if (!(isObject(candidate) && fitsEntryShape(candidate))) {
    // Only the fields the shape names go through zod: the rest pass as they are (`loose`), and zod
    // visiting and copying the ~50 others of a real entry was half its time. Same issues, same order.
    const parsed = entryShape.safeParse(isObject(candidate) ? shapeFields(candidate) : candidate);
    if (!parsed.success) {
      const issue = parsed.error.issues[0];
      return {
        ok: false,
        reason: `app ${appId}: ${issue?.path.join('.') || 'entry'} ${issue?.message ?? 'is invalid'}`,
      };
    }
  }
  // The entry as served, which the shape has just accepted (it transforms nothing): zod's output
  // holds only the fields it checked, and no second copy of each entry lives until the write.
  const entry = candidate as CatalogueEntry;
  // Links and entrances, which frontends and the app service act on (entry-fields.ts).
  const fieldProblem = entryFieldProblem(entry);
  if (fieldProblem !== null) return { ok: false, reason: `app ${appId}: ${fieldProblem}` };
  storedText.set(entry, texts.entry);
  if (isObject(price) && texts.price !== null) storedText.set(price, texts.price);
  const priceConfig = isObject(price) ? price : (entry.price ?? null);
  // The views' rules (catalogue-views.ts), so the column is what `title(locale: "en-US")` answers.
  const title = entryText(entry, 'title', FALLBACK_LOCALE);
  const description = entryText(entry, 'description', FALLBACK_LOCALE);
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
      searchText: catalogueSearchText(entry.name, title, description),
      paid: isPaid(priceConfig),
      price: priceConfig,
      categories: [...new Set(entry.categories ?? [])],
      entry,
    },
  };
}

/**
 * The stored search text of an app: its name, title and description (whole, as its entry holds
 * them in FALLBACK_LOCALE: the columns keep a clipped copy) folded as search compares them
 * (search-fold.ts), then clipped. Trimmed again after the clip, which may end at a space: the
 * result is a fixed point of searchFold, which is how the refold tells a row folded the current
 * way (services/search-refold.ts).
 */
export function catalogueSearchText(name: string, title: string | null, description: string | null): string {
  return clipUnits(searchFold([name, title, description].filter(Boolean).join(' ')), 3 * MAX_COLUMN_TEXT).trimEnd();
}

/**
 * The search text of an app named `name` whose stored entry is `entry`, as readCatalogueEntry
 * computed it when it read the entry: the background refold computes it again from the stored row
 * (services/search-refold.ts).
 */
export function entrySearchText(name: string, entry: unknown): string {
  return catalogueSearchText(
    name,
    entryText(entry, 'title', FALLBACK_LOCALE),
    entryText(entry, 'description', FALLBACK_LOCALE),
  );
}

/**
 * The JSON text of a row's `entry` or `price` as readCatalogueEntry produced it for its checks
 * (a sync's write binds it rather than serialising 2,000 entries again), or JSON.stringify of a
 * value it did not produce: a row whose entry was replaced gets the new entry's text. Read
 * entries are not changed in place.
 */
export function jsonText(value: Record<string, unknown>): string {
  return storedText.get(value) ?? JSON.stringify(value);
}

/** Keyed by the objects a reading returned; they go with their rows. */
const storedText = new WeakMap<object, string>();

/** The fields entryShape names: only these can fail it. */
const SHAPE_FIELDS = Object.keys(entryShape.shape);

/** The fields of `entry` the shape names, as zod reads them (an undefined one as absent). */
function shapeFields(entry: Record<string, unknown>): Record<string, unknown> {
  const fields: Record<string, unknown> = {};
  for (const field of SHAPE_FIELDS) if (entry[field] !== undefined) fields[field] = entry[field];
  return fields;
}

/**
 * Whether `entry` passes entryShape, checked by hand: true only where zod accepts it too (at the
 * edges stricter: a record with an own `constructor` or symbol keys is left to zod). zod still
 * reads whatever this does not pass, and names the fault. readCatalogueEntry of the 2,000 bench
 * entries: 82–117 ms with zod checking every entry, 73–103 ms so.
 */
function fitsEntryShape(entry: Record<string, unknown>): boolean {
  const { name, version, cfgType, title, description, categories, versionHistory, i18n, price } = entry;
  return (
    typeof name === 'string' &&
    APP_NAME.test(name) &&
    isVersion(version) &&
    (cfgType === undefined || (isText(cfgType, 0, MAX_CFG_TYPE) && CFG_TYPE.test(cfgType as string))) &&
    (title == null || isLocalizedText(title)) &&
    (description == null || isLocalizedText(description)) &&
    (categories == null || isListOf(categories, MAX_CATEGORIES, (item) => isText(item, 0, MAX_CATEGORY))) &&
    (versionHistory == null ||
      isListOf(versionHistory, Number.POSITIVE_INFINITY, (item) => isObject(item) && isVersion(item.version))) &&
    (i18n == null || isPlainRecord(i18n)) &&
    (price == null || isPlainRecord(price))
  );
}

function isVersion(value: unknown): boolean {
  return isText(value, 1, MAX_VERSION) && isChartVersion(value as string);
}

function isText(value: unknown, min: number, max: number): boolean {
  return typeof value === 'string' && value.length >= min && value.length <= max;
}

function isListOf(value: unknown, max: number, item: (value: unknown) => boolean): boolean {
  if (!Array.isArray(value) || value.length > max) return false;
  for (let i = 0; i < value.length; i++) if (!item(value[i])) return false;
  return true;
}

/** A record as zod's isPlainObject sees one, and with string keys only (zod checks every own key). */
function isPlainRecord(value: unknown): value is Record<string, unknown> {
  if (!isObject(value) || Object.hasOwn(value, 'constructor')) return false;
  const prototype = Object.getPrototypeOf(value);
  return (prototype === Object.prototype || prototype === null) && Object.getOwnPropertySymbols(value).length === 0;
}

/** localizedText: one string, or a string per locale. */
function isLocalizedText(value: unknown): boolean {
  if (typeof value === 'string') return true;
  if (!isPlainRecord(value)) return false;
  for (const key of Object.keys(value)) if (typeof value[key] !== 'string' && key !== '__proto__') return false;
  return true;
}

/** Whether a PriceConfig asks for payment before install: a `paid` block or any product. */
function isPaid(price: Record<string, unknown> | null): boolean {
  if (!price) return false;
  if (isObject(price.paid)) return true;
  return Array.isArray(price.products) && price.products.length > 0;
}

function clip(text: string | null): string | null {
  return text === null ? null : clipUnits(text, MAX_COLUMN_TEXT);
}

/** In a `u` regex a surrogate pair is one code point: this matches only unpaired halves. */
const LONE_SURROGATE = /\p{Surrogate}/u;

function badText(text: string): string | null {
  if (text.includes('\u0000')) return 'U+0000 (NUL)';
  return LONE_SURROGATE.test(text) ? 'an unpaired surrogate' : null;
}

/**
 * Why a JSON value could not be stored alike on both databases, or null: a string (value or key)
 * holding U+0000 or an unpaired surrogate (PostgreSQL's text and jsonb refuse both where SQLite
 * stores them, so one bad entry would fail a whole sync there), or nesting deeper than
 * MAX_ENTRY_DEPTH. The reason names where (`title.en-US`, `entrances.0.name`). Every way a value
 * reaches a catalogue row is checked here: a sync, the bundled file, an upload's manifests.
 */
export function unstorable(value: unknown, path: (string | number)[] = [], depth = 1): string | null {
  if (typeof value === 'string') {
    const bad = badText(value);
    return bad === null ? null : `${where(path)} holds text that is not valid Unicode (${bad})`;
  }
  if (typeof value !== 'object' || value === null) return null;
  if (depth > MAX_ENTRY_DEPTH) return `${where(path)} nests deeper than ${MAX_ENTRY_DEPTH} levels`;
  for (const [key, item] of Array.isArray(value) ? value.entries() : Object.entries(value)) {
    if (typeof key === 'string') {
      const bad = badText(key);
      if (bad !== null) return `${where(path)} has a key that is not valid Unicode (${bad})`;
    }
    path.push(key);
    const problem = unstorable(item, path, depth + 1);
    path.pop();
    if (problem !== null) return problem;
  }
  return null;
}

/**
 * What `unstorable` and then the size bound say of an entry (and the price sent beside it), with
 * the same reasons, at a fraction of the cost: the JSON text of each, or the reason. In a full
 * sync, `unstorable` testing every string and key of 16 MB of entries took most of the time not
 * spent writing; here two cheap checks only decide whether it must run to name the fault:
 * - nesting, by a walk that looks at no string, before JSON.stringify (which would recurse down
 *   an attacker's depth, or throw on a cycle);
 * - the text, once: JSON.stringify writes U+0000 as `\u0000` and an unpaired surrogate as
 *   `\udXXX` (well-formed JSON.stringify, ES2019), keys as values, and a character is never
 *   written so otherwise. The text may hold those six characters themselves (a backslash in the
 *   source's own text): then the walk finds nothing, and the entry is stored.
 */
function storableText(
  entry: unknown,
  price: Record<string, unknown> | undefined,
): string | { entry: string; price: string | null } {
  if (nestsTooDeep(entry, 1) || (price !== undefined && nestsTooDeep(price, 1))) {
    const problem = unstorableBoth(entry, price);
    if (problem !== null) return problem;
  }
  const entryJson = JSON.stringify(entry) ?? '';
  const priceJson = price === undefined ? null : JSON.stringify(price);
  if (BAD_ESCAPE.test(entryJson) || (priceJson !== null && BAD_ESCAPE.test(priceJson))) {
    const problem = unstorableBoth(entry, price);
    if (problem !== null) return problem;
  }
  // A UTF-16 code unit is at most 3 bytes of UTF-8: real entries are far below the bound uncounted.
  const length = entryJson.length + (priceJson?.length ?? 0);
  if (3 * length > MAX_ENTRY_BYTES) {
    const bytes =
      Buffer.byteLength(entryJson, 'utf8') + (priceJson === null ? 0 : Buffer.byteLength(priceJson, 'utf8'));
    if (bytes > MAX_ENTRY_BYTES) return oversized(entry, price, bytes);
  }
  return { entry: entryJson, price: priceJson };
}

/** The reason `unstorable` gives for the entry, else for the price sent beside it, or null. */
function unstorableBoth(entry: unknown, price: Record<string, unknown> | undefined): string | null {
  return unstorable(entry) ?? (price === undefined ? null : unstorable(price, ['price']));
}

/** How JSON.stringify writes U+0000 and the halves of a surrogate pair (lower case, per ECMA-262). */
const BAD_ESCAPE = /\\u(?:0000|d[89a-f])/;

/**
 * Whether arrays and objects in `value` (at `depth`) nest deeper than MAX_ENTRY_DEPTH, as
 * `unstorable` counts. `for…in` (twice as fast as Object.values here) also sees inherited
 * properties: at worst a false alarm, which `unstorable` then clears.
 */
function nestsTooDeep(value: unknown, depth: number): boolean {
  if (typeof value !== 'object' || value === null) return false;
  if (depth > MAX_ENTRY_DEPTH) return true;
  // Only objects are visited (a call per string cost a third of the walk).
  if (Array.isArray(value)) {
    for (const item of value) if (typeof item === 'object' && nestsTooDeep(item, depth + 1)) return true;
    return false;
  }
  for (const key in value) {
    const item = (value as Record<string, unknown>)[key];
    if (typeof item === 'object' && nestsTooDeep(item, depth + 1)) return true;
  }
  return false;
}

/** Why an entry of `bytes` (with the price sent beside it) is too big to keep, naming its largest field. */
function oversized(entry: unknown, price: Record<string, unknown> | undefined, bytes: number): string {
  let largest = { field: '', bytes: 0 };
  const fields = Object.entries(isObject(entry) ? entry : {});
  for (const [field, value] of price === undefined ? fields : [...fields, ['price', price] as const]) {
    const size = jsonBytes(value);
    if (size > largest.bytes) largest = { field, bytes: size };
  }
  const detail = largest.field === '' ? '' : `; its largest field is ${largest.field} (${largest.bytes} bytes)`;
  return `entry is larger than ${MAX_ENTRY_BYTES} bytes as JSON (${bytes} bytes${detail})`;
}

/** A path as named in a reason: keys are the source's, of any length. */
function where(path: readonly (string | number)[]): string {
  const named = path.join('.') || 'entry';
  return named.length > 200 ? `${clipUnits(named, 200)}…` : named;
}

function jsonBytes(value: unknown): number {
  return Buffer.byteLength(JSON.stringify(value) ?? '', 'utf8');
}
