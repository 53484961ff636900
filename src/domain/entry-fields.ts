import { isObject, MAX_LOCALE_LENGTH } from './catalogue-views.js';
import { excerpt } from './text-length.js';

/**
 * The fields of a catalogue entry that frontends and the app service act on, beyond its shape
 * (catalogue-entry.ts): links a page shows or fetches, and the entrances the app service turns
 * into hosts, ports and routes. Stored as written, an upload carried an icon `javascript:alert(1)`,
 * an entrance host with a CR/LF in it, port -1, an `openMethod` of `javascript:alert(1)` and an
 * entrance named `../../x`. Every way an entry arrives is checked alike (a sync refuses that one
 * app with the reason, as it refuses garbage); the bundled catalogue and the market's own fixtures
 * all pass (http(s) links, DNS label names and hosts, ports 1–65535, `openMethod: window`). The
 * rules hold for each translation (`i18n.<locale>`) too.
 */

/** A lowercase RFC 1123 label, as Kubernetes names a Service (entrance names, hosts): at most 63. */
export const DNS_LABEL = /^[a-z0-9](?:[-a-z0-9]{0,61}[a-z0-9])?$/;

/** The ways Olares opens an entrance; empty or absent is the default. */
const OPEN_METHODS = new Set(['', 'default', 'iframe', 'window']);

/**
 * Links: absolute http or https URLs only, or empty (`data:` icons are refused too: an icon is
 * fetched by every catalogue page, and a `data:image/svg+xml` can carry script).
 */
const LINK_FIELDS = ['icon', 'featuredImage', 'website', 'sourceCode', 'doc'] as const;
const LINK_LIST_FIELDS = ['promoteImage'] as const;

/** Why a field of `entry` is refused (`icon must be an http or https URL`), or null. */
export function entryFieldProblem(entry: Record<string, unknown>): string | null {
  for (const field of LINK_FIELDS) {
    if (!isLink(entry[field])) return `${field} must be an http or https URL (or empty)`;
  }
  for (const field of LINK_LIST_FIELDS) {
    const list = entry[field];
    if (list == null) continue;
    if (!Array.isArray(list)) return `${field} must be a list of http or https URLs`;
    for (let i = 0; i < list.length; i++) {
      if (!isLink(list[i])) return `${field}.${i} must be an http or https URL`;
    }
  }
  return entrancesProblem(entry.entrances) ?? translationsProblem(entry.i18n);
}

function entrancesProblem(entrances: unknown): string | null {
  if (entrances == null) return null;
  if (!Array.isArray(entrances)) return 'entrances must be a list';
  for (let i = 0; i < entrances.length; i++) {
    const problem = entranceProblem(entrances[i]);
    if (problem !== null) return `entrances.${i}.${problem}`;
  }
  return null;
}

/** The texts a translation (`i18n.<locale>`) carries, by the part of it that holds them. */
const TRANSLATED_TEXTS = { metadata: ['title', 'description'], spec: ['fullDescription', 'upgradeDescription'] };

/**
 * Each translation is held to the same rules: its entrances (titles by locale, but a frontend
 * reads the whole entrance there) and its texts. An upload's `i18n/en-US/OlaresManifest.yaml` was
 * stored with an entrance icon `javascript:alert(1)`, a host with CR/LF, port 99999 and a title
 * that was a map.
 */
function translationsProblem(i18n: unknown): string | null {
  if (!isObject(i18n)) return null; // its shape is catalogue-entry.ts's
  for (const [locale, translation] of Object.entries(i18n)) {
    if (translation == null) continue;
    const at = `i18n.${excerpt(locale, MAX_LOCALE_LENGTH)}`;
    if (!isObject(translation)) return `${at} must be a map`;
    for (const [part, fields] of Object.entries(TRANSLATED_TEXTS)) {
      const texts = translation[part];
      if (texts == null) continue;
      if (!isObject(texts)) return `${at}.${part} must be a map`;
      for (const field of fields) {
        const value = texts[field];
        if (value != null && typeof value !== 'string') return `${at}.${part}.${field} must be a text`;
      }
    }
    const problem = entrancesProblem(translation.entrances);
    if (problem !== null) return `${at}.${problem}`;
  }
  return null;
}

function entranceProblem(entrance: unknown): string | null {
  if (!isObject(entrance)) return 'must be a map';
  const { name, host, port, openMethod, icon } = entrance;
  if (typeof name !== 'string' || !DNS_LABEL.test(name)) {
    return 'name must be a lowercase DNS label (a-z, 0-9, "-", at most 63)';
  }
  if (host !== undefined && host !== null && (typeof host !== 'string' || !DNS_LABEL.test(host))) {
    return 'host must be a lowercase DNS label (a-z, 0-9, "-", at most 63)';
  }
  if (
    port !== undefined &&
    port !== null &&
    !(Number.isInteger(port) && (port as number) >= 0 && (port as number) <= 65535)
  ) {
    return 'port must be a whole number from 0 to 65535';
  }
  if (
    openMethod !== undefined &&
    openMethod !== null &&
    !(typeof openMethod === 'string' && OPEN_METHODS.has(openMethod))
  ) {
    return 'openMethod must be default, iframe or window';
  }
  if (!isLink(icon)) return 'icon must be an http or https URL (or empty)';
  return null;
}

/** Absent, empty, or an absolute http(s) URL without control characters or spaces. */
function isLink(value: unknown): boolean {
  if (value === undefined || value === null || value === '') return true;
  if (typeof value !== 'string' || value.length > 2048 || !/^https?:\/\/[^\s\p{Cc}]+$/iu.test(value)) {
    return false;
  }
  return URL.canParse(value);
}
