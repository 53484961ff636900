import { isMap, isScalar, parseDocument, type YAMLError } from 'yaml';
import { type CatalogueRow, MAX_ENTRY_DEPTH, readCatalogueEntry, unstorable } from '../domain/catalogue-entry.js';
import { isChartVersion, NOT_A_CHART_VERSION } from '../domain/catalogue-version.js';
import { isLocaleTag, isObject, parseQuantity } from '../domain/catalogue-views.js';
import { ValidationError } from '../domain/errors.js';
import { excerpt } from '../domain/text-length.js';
import { quoted, readTar, refuse } from './chart-tar.js';
import { yamlNestsDeeperThan } from './yaml-depth.js';
import { linePosition, MAX_YAML_NODES, yamlNodesProblem } from './yaml-nodes.js';

/**
 * A packaged chart (`helm package`'s .tgz: one folder `<name>/` holding `Chart.yaml`,
 * `OlaresManifest.yaml`, templates, values and optional `i18n/<locale>/OlaresManifest.yaml`), read
 * in memory and turned into the catalogue entry a market source would serve for it. Nothing is
 * written to disk: the archive is a client's input and only its manifests are needed.
 */

/** Bounds on one package. Only `maxBytes` is a setting; the others guard against archive bombs. */
export interface ChartLimits {
  /** Largest package, compressed (CHART_UPLOAD_MAX_BYTES). */
  maxBytes: number;
  /** Largest tar stream once gunzipped (file contents plus headers). @default 67108864 (64 MiB) */
  maxUnpackedBytes?: number;
  /** Most entries (files and folders). @default 1000 */
  maxEntries?: number;
}

/** Helm's own packages rarely pass a few MiB unpacked; Helm refuses 100 MiB. */
export const DEFAULT_MAX_UNPACKED_BYTES = 64 * 1024 * 1024;
export const DEFAULT_MAX_ENTRIES = 1000;
/** Most translations (`i18n/<locale>/OlaresManifest.yaml`). */
const MAX_LOCALES = 32;
/** Most YAML warnings (unresolved tags, ambiguous anchors) in one manifest; real ones have none. */
const MAX_YAML_WARNINGS = 100;

export interface ChartPackage {
  /** The entry as a market source serves it (ApplicationInfoEntry); `versionHistory` holds this version. */
  served: Record<string, unknown>;
  /** What the catalogue row holds, read from `served` by the catalogue's own rules. */
  row: CatalogueRow;
}

/** Reads and checks a package; every problem is a ValidationError naming it. */
export async function readChartPackage(bytes: Uint8Array, limits: ChartLimits): Promise<ChartPackage> {
  const files = await unpackManifests(bytes, limits);
  return buildEntry(files);
}

interface Manifests {
  folder: string;
  chart: unknown;
  manifest: unknown;
  translations: Map<string, unknown>;
}

/** Unpacks the archive, keeping only the manifests and checking every entry on the way. */
async function unpackManifests(bytes: Uint8Array, limits: ChartLimits): Promise<Manifests> {
  if (bytes.byteLength > limits.maxBytes) {
    refuse(`the archive is larger than ${limits.maxBytes} bytes (CHART_UPLOAD_MAX_BYTES)`);
  }
  if (bytes[0] !== 0x1f || bytes[1] !== 0x8b) refuse('not a gzip-compressed tar archive');
  const kept = await readTar(bytes, {
    maxUnpackedBytes: limits.maxUnpackedBytes ?? DEFAULT_MAX_UNPACKED_BYTES,
    maxEntries: limits.maxEntries ?? DEFAULT_MAX_ENTRIES,
  });
  const folder = kept.folder ?? refuse('the archive is empty');
  const text = (name: string) => kept.files.get(`${folder}/${name}`);
  const chartText = text('Chart.yaml') ?? refuse(`Chart.yaml is missing (expected ${quoted(folder)}/Chart.yaml)`);
  const manifestText =
    text('OlaresManifest.yaml') ??
    refuse(`OlaresManifest.yaml is missing (expected ${quoted(folder)}/OlaresManifest.yaml)`);
  // Counted before any is parsed: each may be 256 KiB of YAML.
  const locales: [string, Buffer][] = [];
  for (const [path, content] of kept.files) {
    const locale = /^[^/]+\/i18n\/([^/]+)\/OlaresManifest\.yaml$/.exec(path)?.[1];
    if (locale === undefined) continue;
    if (!isLocaleTag(locale)) refuse(`i18n/${excerpt(locale, 40)}: not a locale like en-US`);
    locales.push([locale, content]);
  }
  if (locales.length > MAX_LOCALES) refuse(`more than ${MAX_LOCALES} translations in i18n/`);
  const translations = new Map<string, unknown>();
  for (const [locale, content] of locales) {
    translations.set(locale, parseManifest(`i18n/${locale}/OlaresManifest.yaml`, content));
  }
  return {
    folder,
    chart: parseManifest('Chart.yaml', chartText),
    manifest: parseManifest('OlaresManifest.yaml', manifestText),
    translations,
  };
}

/**
 * A manifest's YAML as plain data: UTF-8, at most 50 aliases, and storable as the catalogue
 * stores entries (`unstorable`: no NUL or unpaired surrogate, bounded nesting), checked here
 * too so that a refusal names the file; the entry built from the manifests is checked again whole.
 */
function parseManifest(name: string, content: Buffer): unknown {
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(content);
  } catch {
    return refuse(`${name} is not valid UTF-8`);
  }
  // Before the parser, which recurses per level: 100,000 nested `[` took it 5.9 s to overflow.
  if (yamlNestsDeeperThan(text, MAX_ENTRY_DEPTH)) return refuse(`${name} nests deeper than ${MAX_ENTRY_DEPTH} levels`);
  let value: unknown;
  try {
    // The YAML 1.2 core schema: no timestamps, no merge keys; aliases capped against "billion laughs".
    // Duplicate keys are found by yamlNodesProblem, in linear time (yaml's check is quadratic).
    const document = parseYaml(text);
    const nodes = yamlNodesProblem(document.contents);
    const first = document.errors[0];
    if (nodes?.kind === 'duplicate' && (first === undefined || first.pos[0] > nodes.offset)) {
      throw new Error(`Map keys must be unique ${linePosition(text, nodes.offset)}`);
    }
    if (first !== undefined) throw new Error(placed(text, first));
    const warnings = document.warnings;
    if (warnings.length > MAX_YAML_WARNINGS) {
      const example = excerpt(placed(text, warnings[0] as YAMLError), 200);
      return refuse(`${name} has more than ${MAX_YAML_WARNINGS} YAML warnings (the first: ${example})`);
    }
    if (nodes?.kind === 'nodes') return refuse(`${name} has more than ${MAX_YAML_NODES} keys, values and items`);
    if (nodes?.kind === 'aliases') throw new Error('Excessive alias count indicates a resource exhaustion attack');
    value = document.toJS({ maxAliasCount: 50 });
    rememberWrittenNumbers(document.contents, value);
  } catch (error) {
    if (error instanceof ValidationError) throw error;
    // What yamlNestsDeeperThan undercounts may still overflow the parser's stack.
    const { message } = error as Error;
    if (error instanceof RangeError || /Maximum call stack size exceeded/.test(message)) {
      return refuse(`${name} nests deeper than ${MAX_ENTRY_DEPTH} levels`);
    }
    // Its first line, which for a mark-up error ends on a colon before the excerpt it quotes.
    const reason = message.split('\n')[0]?.replace(/:\s*$/, '');
    return refuse(`${name} is not valid YAML: ${excerpt(reason ?? '', 200)}`);
  }
  const problem = unstorable(value);
  // `entry holds …` for the whole file, `metadata.title holds …` for a field of it.
  if (problem !== null) refuse(problem.startsWith('entry ') ? `${name}${problem.slice(5)}` : `${name}: ${problem}`);
  return value;
}

/**
 * The parse, its errors and warnings kept cheap: yaml makes each an Error, and by default
 * (`prettyErrors`) copies and scans its whole line to quote it. A 610-byte chart of 51,000 unknown
 * tags (`!t a`, a warning each) on one line held the event loop 26 s, 256 KiB of `,` in a flow
 * sequence (an error each) over two minutes. Without the excerpts, the stack trace V8 captures for
 * each was most of what was left (the commas: 2.9 s, 0.4 s without); the parse is synchronous, so
 * no other code runs while they are off. Only the one error reported is placed (`placed`).
 */
function parseYaml(text: string) {
  const stackTraceLimit = Error.stackTraceLimit;
  Error.stackTraceLimit = 0;
  try {
    return parseDocument(text, { uniqueKeys: false, prettyErrors: false });
  } finally {
    Error.stackTraceLimit = stackTraceLimit;
  }
}

/** A YAML error's message with its position, as yaml's pretty errors say it (`… at line 2, column 1`). */
function placed(text: string, error: YAMLError): string {
  return error.pos[0] < 0 ? error.message : `${error.message} ${linePosition(text, error.pos[0])}`;
}

type Yaml = Record<string, unknown>;

/** A map field of a manifest, or a refusal naming it. */
function mapAt(file: string, parent: Yaml, key: string, required: boolean): Yaml | undefined {
  const value = parent[key];
  if (value === undefined || value === null) return required ? refuse(`${file}: ${key} is missing`) : undefined;
  return isObject(value) ? value : refuse(`${file}: ${key} must be a map`);
}

/**
 * How the numbers of a manifest's maps were written, by map and key. YAML reads `version: 1.10`
 * as the number 1.1, and a text field takes what the author wrote, not what the number prints as.
 */
const writtenNumbers = new WeakMap<object, Map<string, string>>();

/** Walks a parsed document beside its JS value, noting each number in a map as written. */
function rememberWrittenNumbers(node: unknown, value: unknown): void {
  if (!isMap(node) || !isObject(value)) return;
  for (const { key, value: child } of node.items) {
    if (!isScalar(key)) continue;
    const name = String(key.value);
    if (isScalar(child) && typeof child.value === 'number' && child.source !== undefined) {
      const written = writtenNumbers.get(value) ?? new Map<string, string>();
      writtenNumbers.set(value, written.set(name, child.source));
    } else {
      rememberWrittenNumbers(child, value[name]);
    }
  }
}

/** A text field (YAML may read `1.10` or `2` as a number: taken as written). */
function textAt(file: string, parent: Yaml, path: string, key: string, required = false): string | undefined {
  const value = parent[key];
  if (value === undefined || value === null || value === '') {
    return required ? refuse(`${file}: ${path}${key} is missing`) : undefined;
  }
  if (typeof value === 'number') return writtenNumbers.get(parent)?.get(key) ?? String(value);
  if (typeof value === 'boolean') return String(value);
  return typeof value === 'string' ? value : refuse(`${file}: ${path}${key} must be text`);
}

/**
 * `spec.locale`, the locales the app is in: each one like the folders of i18n/ (isLocaleTag).
 * Refused rather than dropped, as a folder is: the admin can correct the manifest, and a list
 * cut silently would name fewer locales than the chart's author wrote.
 */
function localeList(value: unknown): unknown[] | undefined {
  if (value === undefined || value === null) return undefined;
  if (!Array.isArray(value)) return refuse('OlaresManifest.yaml: spec.locale must be a list of locales like en-US');
  value.forEach((item, index) => {
    if (typeof item !== 'string' || !isLocaleTag(item)) {
      refuse(`OlaresManifest.yaml: spec.locale.${index} is not a locale like en-US`);
    }
  });
  return value;
}

/** A Kubernetes quantity (`512Mi`, `2G`, `1073741824`) in whole bytes, as market sources serve requirements. */
function bytesOf(field: string, value: string | undefined): string | undefined {
  if (value === undefined) return undefined;
  const bytes = parseQuantity(value);
  // Whole bytes, written in digits: past 2^53 a number is written with an exponent (1.15e+47).
  if (bytes === null || Math.round(bytes) > Number.MAX_SAFE_INTEGER) {
    return refuse(`OlaresManifest.yaml: ${field} must be a quantity like 512Mi or 2Gi (got ${excerpt(value, 40)})`);
  }
  return String(Math.round(bytes));
}

/** Fields of the entry built from the manifest, by where the manifest holds them. */
const MANIFEST_FIELD: Record<string, string> = {
  version: 'metadata.version',
  title: 'metadata.title',
  description: 'metadata.description',
  categories: 'metadata.categories',
  cfgType: 'olaresManifest.type',
};

/** The ApplicationInfoEntry of the package, then the catalogue's reading of it. */
function buildEntry({ folder, chart, manifest, translations }: Manifests): ChartPackage {
  if (!isObject(chart)) return refuse('Chart.yaml must be a map');
  if (!isObject(manifest)) return refuse('OlaresManifest.yaml must be a map');
  const M = 'OlaresManifest.yaml';
  const chartName = textAt('Chart.yaml', chart, '', 'name', true) as string;
  const chartVersion = textAt('Chart.yaml', chart, '', 'version', true) as string;
  const metadata = mapAt(M, manifest, 'metadata', true) as Yaml;
  const spec = mapAt(M, manifest, 'spec', false) ?? {};
  const name = textAt(M, metadata, 'metadata.', 'name', true) as string;
  const version = textAt(M, metadata, 'metadata.', 'version', true) as string;
  if (!isChartVersion(version)) {
    refuse(`${M}: metadata.version ${JSON.stringify(excerpt(version, 100))} ${NOT_A_CHART_VERSION}`);
  }
  const categories = metadata.categories ?? [];
  if (!Array.isArray(categories) || !categories.every((item) => typeof item === 'string')) {
    refuse(`${M}: metadata.categories must be a list of names`);
  }
  const now = `${new Date().toISOString().slice(0, -1)}000000Z`; // nine fractional digits, as sources send
  const spectext = (key: string) => textAt(M, spec, 'spec.', key);
  const served: Record<string, unknown> = {
    id: name,
    appID: name,
    name,
    cfgType: textAt(M, manifest, '', 'olaresManifest.type') ?? 'app',
    chartName: `${name}-${version}.tgz`,
    version,
    versionName: spectext('versionName') ?? version,
    title: textAt(M, metadata, 'metadata.', 'title') ?? name,
    description: textAt(M, metadata, 'metadata.', 'description') ?? '',
    icon: textAt(M, metadata, 'metadata.', 'icon') ?? '',
    categories,
    fullDescription: spectext('fullDescription') ?? '',
    upgradeDescription: spectext('upgradeDescription') ?? '',
    developer: spectext('developer') ?? '',
    submitter: spectext('submitter') ?? '',
    website: spectext('website') ?? '',
    sourceCode: spectext('sourceCode') ?? '',
    doc: spectext('doc') ?? '',
    featuredImage: spectext('featuredImage') ?? '',
    promoteImage: spec.promoteImage ?? [],
    locale: localeList(spec.locale) ?? [...translations.keys()],
    license: spec.license ?? [],
    requiredMemory: bytesOf('spec.requiredMemory', spectext('requiredMemory')) ?? '',
    requiredDisk: bytesOf('spec.requiredDisk', spectext('requiredDisk')) ?? '',
    requiredGPU: bytesOf('spec.requiredGpu', spectext('requiredGpu')) ?? '',
    requiredCPU: spectext('requiredCpu') ?? '',
    supportArch: spec.supportArch ?? [],
    onlyAdmin: spec.onlyAdmin === true,
    entrances: manifest.entrances ?? [],
    middleware: manifest.middleware ?? null,
    options: manifest.options ?? {},
    permission: manifest.permission ?? {},
    envs: manifest.envs ?? [],
    i18n: Object.fromEntries(
      [...translations].map(([locale, translation]) => [locale, translationOf(locale, translation)]),
    ),
    versionHistory: [{ appName: name, version, versionName: spectext('versionName') ?? version, mergedAt: now }],
    createTime: Math.floor(Date.now() / 1000),
    updateTime: Math.floor(Date.now() / 1000),
    updated_at: now,
  };
  const reading = readCatalogueEntry(name, served);
  if (!reading.ok) {
    const detail = reading.reason.replace(`app ${name}: `, '');
    if (detail.startsWith('name ')) {
      refuse(`${M}: metadata.name ${JSON.stringify(excerpt(name, 100))} is not accepted: ${detail.slice(5)}`);
    }
    // A translation's field in its own file (`i18n.en-US.entrances.0.port`: entrances.0.port there).
    const translated = /^i18n\.([^.]+)\.(.*)$/s.exec(detail);
    if (translated) refuse(`i18n/${translated[1]}/${M}: ${translated[2]}`);
    // The entry's field as the manifest names it (`categories` is `metadata.categories` there).
    const field = detail.split(/[ .]/)[0] ?? '';
    refuse(`${M}: ${MANIFEST_FIELD[field] ? `${MANIFEST_FIELD[field]}${detail.slice(field.length)}` : detail}`);
  }
  // Helm's rule (`helm lint`) and Olares's: the folder, the chart and the app carry one name and version.
  if (chartName !== name) refuse(`Chart.yaml name ${quoted(chartName)} differs from metadata.name ${name} in ${M}`);
  if (folder !== name) refuse(`the chart folder ${quoted(folder)} differs from metadata.name ${name}`);
  if (chartVersion !== version) {
    refuse(`Chart.yaml version ${quoted(chartVersion)} differs from metadata.version ${version} in ${M}`);
  }
  return { served, row: reading.row };
}

/**
 * What a translation carries, in the shape sources serve `i18n.<locale>`: its texts taken as
 * written, like the manifest's; the catalogue's rules check the rest (entry-fields.ts).
 */
function translationOf(locale: string, translation: unknown): Yaml {
  if (!isObject(translation)) return {};
  const file = `i18n/${locale}/OlaresManifest.yaml`;
  const metadata = mapAt(file, translation, 'metadata', false) ?? {};
  const spec = mapAt(file, translation, 'spec', false) ?? {};
  const texts = (part: Yaml, path: string, keys: string[]) =>
    Object.fromEntries(keys.map((key) => [key, textAt(file, part, path, key) ?? null]));
  return {
    metadata: texts(metadata, 'metadata.', ['title', 'description']),
    entrances: translation.entrances ?? null,
    spec: texts(spec, 'spec.', ['fullDescription', 'upgradeDescription']),
  };
}
