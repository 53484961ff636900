import type { TypedDocumentNode } from '@graphql-typed-document-node/core';
import { parse } from 'graphql';
import { describe, expect, test } from 'vitest';
import { jsonText, MAX_ENTRY_BYTES, MAX_ENTRY_DEPTH, readCatalogueEntry } from '../src/domain/catalogue-entry.js';
import { compareVersions, isNewerVersion } from '../src/domain/catalogue-version.js';
import {
  entryEntrances,
  entryLocales,
  entryRequirements,
  entryStrings,
  entryText,
  entryVersionHistory,
  parseLocale,
  parseQuantity,
  productDescription,
  readPrice,
} from '../src/domain/catalogue-views.js';
import { ValidationError } from '../src/domain/errors.js';
import { parseRfc3339Time } from '../src/platform/rfc3339.js';
import { availableDatabases } from './support/databases.js';
import { type Seeder, seededTest } from './support/seed.js';
import { AUTH_ENV, dataOf, errorCodes, execute, type TestServer, TOKENS } from './support/server.js';

// Typed by hand rather than by codegen: these operations select fields that other work in
// flight adds to the printed schema at the same time (see the report of issue 13).
function operation<Result, Variables = Record<string, unknown>>(text: string) {
  return parse(text) as TypedDocumentNode<Result, Variables>;
}

/** A catalogue entry as a market source serves one, every field this server types filled in. */
function fullEntry(name: string) {
  return {
    id: name,
    name,
    appID: name,
    cfgType: 'app',
    version: '2.1.0',
    versionName: '10.9.0',
    title: { 'en-US': 'Media Vault', 'de-DE': 'Medientresor' },
    description: 'Stream your films',
    fullDescription: 'A **long** description',
    upgradeDescription: { 'en-US': 'Faster scans', 'zh-CN': '扫描更快' },
    icon: 'https://icons.example/media-vault.png',
    featuredImage: 'https://images.example/banner.png',
    promoteImage: ['https://images.example/1.png', 'https://images.example/2.png'],
    screenshots: null,
    tags: ['media', 'video'],
    developer: 'Vault Labs',
    requiredCPU: '500m',
    requiredMemory: '4Gi',
    requiredDisk: '21474836480',
    requiredGPU: 'lots',
    supportArch: ['amd64', 'arm64'],
    locale: ['en-US', 'zh-CN'],
    i18n: {
      'zh-CN': {
        metadata: { title: '媒体库', description: '播放你的电影' },
        spec: { fullDescription: '很长的描述', upgradeDescription: '' },
      },
    },
    entrances: [
      {
        name: 'web',
        title: 'Media Vault',
        host: 'media-vault',
        port: 8096,
        icon: 'https://icons.example/web.png',
        authLevel: 'private',
        openMethod: 'window',
        invisible: false,
      },
      { name: 'api', invisible: true },
    ],
    versionHistory: [
      {
        appName: name,
        version: '2.1.0',
        versionName: '10.9.0',
        mergedAt: '2026-06-07T19:47:07.288123456Z',
        upgradeDescription: 'Faster scans',
      },
      { appName: name, version: '2.0.0', mergedAt: 'yesterday', upgradeDescription: null },
      { appName: name, version: 3 },
    ],
  };
}

const PRICE = {
  developer: 'Vault Labs',
  paid: {
    product_id: 'media-vault-license',
    price: [
      { chain: 'optimism', token_symbol: 'USDC', receive_wallet: '0xabc', product_price: '4.99' },
      { chain: 'eth', token_symbol: 'USDT', receive_wallet: '0xdef', product_price: 5 },
    ],
    description: [
      { lang: 'en', title: 'Licence', description: 'Lifetime licence', icon: 'https://icons.example/l.png' },
      { lang: 'zh-CN', title: '许可证', description: '终身许可' },
    ],
  },
  products: [
    {
      product_id: 'media-vault-storage',
      type: 'subscribe',
      price: [{ chain: 'optimism', token_symbol: 'USDC', receive_wallet: '0xabc', product_price: '1.00' }],
      description: [],
    },
  ],
};

describe('typed views of a catalogue entry', () => {
  test('text comes from a locale map, then i18n in the locale, then the plain string, then any translation', () => {
    const entry = fullEntry('media-vault');
    expect(entryText(entry, 'title', null)).toBe('Media Vault');
    expect(entryText(entry, 'title', 'de-AT')).toBe('Medientresor');
    expect(entryText(entry, 'title', 'fr')).toBe('Media Vault');
    expect(entryText(entry, 'description', 'zh-CN')).toBe('播放你的电影');
    expect(entryText(entry, 'description', 'zh')).toBe('播放你的电影');
    expect(entryText(entry, 'description', 'fr-FR')).toBe('Stream your films');
    expect(entryText(entry, 'fullDescription', 'zh_CN')).toBe('很长的描述');
    // An empty translation is no translation: the plain text answers.
    expect(entryText(entry, 'upgradeDescription', 'zh-CN')).toBe('扫描更快');
    expect(
      entryText(
        { upgradeDescription: 'plain', i18n: { 'zh-CN': { spec: { upgradeDescription: '' } } } },
        'upgradeDescription',
        'zh-CN',
      ),
    ).toBe('plain');
    // Only translations in i18n, none in the field itself.
    expect(entryText({ i18n: { 'ja-JP': { metadata: { title: 'メディア' } } } }, 'title', 'en-US')).toBe('メディア');
  });

  test('missing, null and wrongly typed fields answer null or empty, never throw', () => {
    const odd = [
      null,
      'an entry',
      42,
      [],
      {},
      {
        title: 7,
        description: { 'en-US': 3 },
        i18n: 'x',
        tags: 'media',
        supportArch: [1, null, 'arm64'],
        entrances: [null, 'web', { port: 70000, invisible: 'yes' }],
        versionHistory: { version: '1.0.0' },
        requiredCPU: { cores: 2 },
        requiredMemory: -1,
        locale: 'en-US',
      },
    ];
    for (const entry of odd) {
      expect(entryText(entry, 'title', 'en-US')).toBeNull();
      expect(entryText(entry, 'description', null)).toBeNull();
      expect(entryStrings(entry, 'tags')).toEqual([]);
      expect(entryVersionHistory(entry)).toEqual([]);
      expect(entryRequirements(entry).cpu).toBeNull();
    }
    const last = odd.at(-1);
    expect(entryStrings(last, 'supportArch')).toEqual(['arm64']);
    expect(entryEntrances(last)).toEqual([
      {
        name: null,
        title: null,
        host: null,
        port: null,
        icon: null,
        authLevel: null,
        openMethod: null,
        invisible: false,
      },
    ]);
    expect(entryRequirements(last).memory).toEqual({ text: '-1', value: null });
    expect(entryLocales(last)).toEqual([]);
    expect(readPrice(null)).toBeNull();
    expect(readPrice([PRICE])).toBeNull();
    expect(readPrice({ paid: 'yes', products: { product_id: 'x' } })).toEqual({
      developer: null,
      paid: null,
      products: [],
    });
  });

  test('requirements keep their text and parse Kubernetes quantities', () => {
    expect(entryRequirements(fullEntry('x'))).toEqual({
      cpu: { text: '500m', value: 0.5 },
      memory: { text: '4Gi', value: 4 * 2 ** 30 },
      disk: { text: '21474836480', value: 21474836480 },
      gpu: { text: 'lots', value: null },
    });
    expect(parseQuantity('1.5G')).toBe(1.5e9);
    expect(parseQuantity('512Mi')).toBe(512 * 2 ** 20);
    expect(parseQuantity(' 2 ')).toBe(2);
    expect(parseQuantity('1e3')).toBe(1000);
    for (const bad of ['', 'Gi', '4 Gi', '-2', '4XB', '1e999']) expect(parseQuantity(bad), bad).toBeNull();
  });

  test('entrances, version history with nine-digit timestamps, locales', () => {
    const entry = fullEntry('x');
    expect(entryEntrances(entry)[1]).toMatchObject({ name: 'api', port: null, invisible: true, host: null });
    const history = entryVersionHistory(entry);
    expect(history.map((item) => item.version)).toEqual(['2.1.0', '2.0.0']);
    expect(parseRfc3339Time(history[0]?.mergedAt ?? '')?.toISOString()).toBe('2026-06-07T19:47:07.288Z');
    expect(parseRfc3339Time(history[1]?.mergedAt ?? '')).toBeNull();
    expect(entryLocales(entry)).toEqual(['en-US', 'zh-CN']);
    expect(entryLocales({ i18n: { 'fr-FR': {}, broken: 1 } })).toEqual(['fr-FR']);
    // Only language tags, in the list as among i18n's keys.
    expect(entryLocales({ locale: [1, { a: 2 }, '../x', 'de-DE'] })).toEqual(['de-DE']);
    expect(entryLocales({ locale: [1, '../x'], i18n: { '../y': {}, 'ja-JP': {} } })).toEqual(['ja-JP']);
  });

  test('a price shows what to pay on each chain and to whom, with descriptions by language', () => {
    const price = readPrice(PRICE);
    expect(price?.developer).toBe('Vault Labs');
    expect(price?.paid?.prices).toEqual([
      { chain: 'optimism', tokenSymbol: 'USDC', amount: '4.99', receiveWallet: '0xabc' },
      { chain: 'eth', tokenSymbol: 'USDT', amount: '5', receiveWallet: '0xdef' },
    ]);
    expect(price?.products.map((product) => [product.productId, product.type])).toEqual([
      ['media-vault-storage', 'subscribe'],
    ]);
    const paid = price?.paid;
    if (!paid) throw new Error('no paid block');
    expect(productDescription(paid, 'zh-CN')?.title).toBe('许可证');
    expect(productDescription(paid, 'en-GB')?.title).toBe('Licence');
    expect(productDescription(paid, 'fr')?.title).toBe('Licence');
    expect(productDescription(price.products[0] as never, 'fr')).toBeNull();
  });

  test('a locale argument is a short language tag', () => {
    expect(parseLocale(undefined)).toBeNull();
    expect(parseLocale('zh-Hant-TW')).toBe('zh-Hant-TW');
    for (const bad of ['', 'x'.repeat(36), 'en US', '../etc', 'en--US']) {
      expect(() => parseLocale(bad), bad).toThrow(ValidationError);
    }
  });
});

/** A value nested `levels` deep: `{ a: { a: … 'end' } }`. */
function nested(levels: number): unknown {
  let value: unknown = 'end';
  for (let level = 0; level < levels; level++) value = { a: value };
  return value;
}

/** fullEntry without its malformed history item (a version that is a number), so a row reads it. */
function readable(name: string) {
  const entry = fullEntry(name);
  return { ...entry, versionHistory: entry.versionHistory.slice(0, 2) };
}

/** The reason an entry is refused for (the test fails if it is read). */
function refusal(served: unknown): string {
  const reading = readCatalogueEntry('media-vault', served);
  expect(reading.ok, JSON.stringify(reading).slice(0, 200)).toBe(false);
  return reading.ok ? '' : reading.reason;
}

describe('what an entry must be to be stored, on either database', () => {
  test('a full entry is read, and one at the bounds too', () => {
    expect(readCatalogueEntry('media-vault', readable('media-vault')).ok).toBe(true);
    // The entry itself is level 1: `options` at 2, and 30 more levels under it.
    const deepest = { ...readable('media-vault'), options: nested(MAX_ENTRY_DEPTH - 2) };
    expect(readCatalogueEntry('media-vault', deepest).ok).toBe(true);
    const padding = 'x'.repeat(MAX_ENTRY_BYTES - JSON.stringify(readable('media-vault')).length - 32);
    expect(readCatalogueEntry('media-vault', { ...readable('media-vault'), fullDescription: padding }).ok).toBe(true);
    // A pair of surrogates is one character, not a lone half.
    const emoji = readCatalogueEntry('media-vault', { ...readable('media-vault'), title: 'Vault 🎬' });
    expect(emoji.ok && emoji.row.title).toBe('Vault 🎬');
  });

  test('links and entrances that frontends and the app service act on are refused per entry, naming the field', () => {
    const entry = readable('media-vault');
    const web = { name: 'web', host: 'media-vault', port: 8096 };
    const cases: [Record<string, unknown>, string][] = [
      [{ icon: 'javascript:alert(1)' }, 'icon must be an http or https URL (or empty)'],
      [{ icon: 'data:image/svg+xml,<svg onload=alert(1)>' }, 'icon must be an http or https URL (or empty)'],
      [
        { promoteImage: ['https://ok.example/a.png', 'file:///etc/passwd'] },
        'promoteImage.1 must be an http or https URL',
      ],
      [{ entrances: [{ ...web, host: 'evil.example.com\r\nX: y' }] }, 'entrances.0.host must be a lowercase DNS label'],
      [{ entrances: [{ ...web, port: -1 }] }, 'entrances.0.port must be a whole number from 0 to 65535'],
      [{ entrances: [{ ...web, port: 65536 }] }, 'entrances.0.port must be a whole number from 0 to 65535'],
      [
        { entrances: [{ ...web, openMethod: 'javascript:alert(1)' }] },
        'entrances.0.openMethod must be default, iframe or window',
      ],
      [{ entrances: [web, { name: '../../x' }] }, 'entrances.1.name must be a lowercase DNS label'],
      // Each translation alike, and its texts are texts.
      [
        { i18n: { 'en-US': { entrances: [{ name: 'web', icon: 'javascript:alert(1)' }] } } },
        'i18n.en-US.entrances.0.icon must be an http or https URL',
      ],
      [
        { i18n: { 'en-US': { entrances: [{ ...web, host: 'BAD HOST\r\nX: y' }] } } },
        'i18n.en-US.entrances.0.host must be a lowercase DNS label',
      ],
      [{ i18n: { 'en-US': { entrances: [{ ...web, port: 99999 }] } } }, 'i18n.en-US.entrances.0.port must be a whole'],
      [
        { i18n: { 'en-US': { entrances: [{ ...web, openMethod: 'javascript:' }] } } },
        'i18n.en-US.entrances.0.openMethod must be default, iframe or window',
      ],
      [{ i18n: { 'en-US': { entrances: 'web' } } }, 'i18n.en-US.entrances must be a list'],
      [{ i18n: { 'en-US': { metadata: { title: { nested: 'obj' } } } } }, 'i18n.en-US.metadata.title must be a text'],
      [{ i18n: { 'en-US': { metadata: { description: ['a'] } } } }, 'i18n.en-US.metadata.description must be a text'],
      [{ i18n: { 'en-US': { spec: { fullDescription: 1 } } } }, 'i18n.en-US.spec.fullDescription must be a text'],
      [{ i18n: { 'en-US': { metadata: 'Title' } } }, 'i18n.en-US.metadata must be a map'],
      [{ i18n: { 'en-US': 'Title' } }, 'i18n.en-US must be a map'],
    ];
    for (const [fields, reason] of cases)
      expect(refusal({ ...entry, ...fields })).toContain(`app media-vault: ${reason}`);
    const fine = {
      icon: 'https://icons.example/a.png',
      entrances: [{ ...web, port: 0, openMethod: 'iframe' }, { name: 'api' }],
      i18n: {
        'zh-CN': { metadata: { title: '媒体库', description: null }, entrances: [{ name: 'web', title: '网页' }] },
        'de-DE': { metadata: null, entrances: null, spec: { fullDescription: '' } },
      },
    };
    expect(readCatalogueEntry('media-vault', { ...entry, ...fine }).ok).toBe(true);
  });

  test('NUL in a title is refused, naming the field (PostgreSQL cannot store it; SQLite would)', () => {
    const entry = readable('media-vault');
    expect(refusal({ ...entry, title: { ...entry.title, 'en-US': 'Media\u0000Vault' } })).toBe(
      'app media-vault: title.en-US holds text that is not valid Unicode (U+0000 (NUL))',
    );
    expect(refusal({ ...entry, title: 'Media\u0000Vault' })).toBe(
      'app media-vault: title holds text that is not valid Unicode (U+0000 (NUL))',
    );
    // Anywhere in the entry, keys included, and in a price sent beside it.
    expect(refusal({ ...entry, entrances: [{ name: 'ok' }, { name: 'a\u0000' }] })).toContain('entrances.1.name holds');
    expect(refusal({ ...entry, options: { 'bad\u0000key': 1 } })).toBe(
      'app media-vault: options has a key that is not valid Unicode (U+0000 (NUL))',
    );
    expect(refusal({ app_entry: entry, price: { developer: 'x\u0000' } })).toContain('price.developer holds');
  });

  test('a lone surrogate is refused, naming the field', () => {
    const entry = readable('media-vault');
    expect(refusal({ ...entry, description: 'Stream \ud83c your films' })).toBe(
      'app media-vault: description holds text that is not valid Unicode (an unpaired surrogate)',
    );
    expect(refusal({ ...entry, i18n: { 'zh-CN': { metadata: { title: '\udfa6' } } } })).toContain(
      'i18n.zh-CN.metadata.title holds text that is not valid Unicode',
    );
  });

  test('an entry nested too deep is refused, naming where', () => {
    const reason = refusal({ ...readable('media-vault'), options: nested(MAX_ENTRY_DEPTH) });
    expect(reason).toMatch(/^app media-vault: options(\.a)+ nests deeper than 32 levels$/);
    // Without recursing to the bottom of an attacker's nesting.
    expect(refusal({ ...readable('media-vault'), envs: [nested(100_000)] })).toContain('envs.0.a');
  });

  // The checks look at the entry's JSON text first and walk it only to name the fault: wherever
  // the fault is, in a key or a value, in the entry or the price beside it, the reason is the walk's.
  test('NUL and lone surrogates deep in keys and values are refused, naming the same place', () => {
    const entry = readable('media-vault');
    expect(refusal({ ...entry, entrances: [{ name: 'ok' }, { name: 'ok', extra: [{ note: 'a\u0000b' }] }] })).toBe(
      'app media-vault: entrances.1.extra.0.note holds text that is not valid Unicode (U+0000 (NUL))',
    );
    expect(refusal({ ...entry, i18n: { 'de-DE': { metadata: { 'ti\ud800tle': 'x' } } } })).toBe(
      'app media-vault: i18n.de-DE.metadata has a key that is not valid Unicode (an unpaired surrogate)',
    );
    expect(refusal({ ...entry, options: [[[{ deep: ['x', 'trailing \udfff'] }]]] })).toBe(
      'app media-vault: options.0.0.0.deep.1 holds text that is not valid Unicode (an unpaired surrogate)',
    );
    expect(refusal({ app_entry: entry, price: { products: [{ 'p\udc00': 1 }] } })).toBe(
      'app media-vault: price.products.0 has a key that is not valid Unicode (an unpaired surrogate)',
    );
    expect(refusal({ app_entry: entry, price: { developer: ['\u0000'] } })).toBe(
      'app media-vault: price.developer.0 holds text that is not valid Unicode (U+0000 (NUL))',
    );
    // Two faults: the first in the entry's order is named, as before (here the text, not the depth).
    expect(refusal({ ...entry, description: 'a\ud800', options: nested(MAX_ENTRY_DEPTH + 5) })).toBe(
      'app media-vault: description holds text that is not valid Unicode (an unpaired surrogate)',
    );
    // A cycle is too deep, not a crash of JSON.stringify.
    const cyclic: Record<string, unknown> = { ...entry };
    cyclic.options = { again: cyclic };
    expect(refusal(cyclic)).toMatch(/^app media-vault: options\.again\.options[.a-z]*…? nests deeper than 32 levels$/);
  });

  test('text that only looks like those escapes is stored, and the text checked is the text written', () => {
    const entry = { ...readable('media-vault'), title: 'C:\\u0000 and \\ud83c', notes: { '\\udfff': '\\\\u0000' } };
    const reading = readCatalogueEntry('media-vault', entry);
    expect(reading.ok, JSON.stringify(reading).slice(0, 200)).toBe(true);
    if (!reading.ok) return;
    expect(reading.row.title).toBe('C:\\u0000 and \\ud83c');
    expect(jsonText(reading.row.entry)).toBe(JSON.stringify(entry));
    expect(JSON.parse(jsonText(reading.row.entry))).toEqual(entry);
    const price = { products: [{ product_id: 'pro' }] };
    const wrapped = readCatalogueEntry('media-vault', { app_entry: entry, price });
    expect(wrapped.ok && wrapped.row.price !== null && jsonText(wrapped.row.price)).toBe(JSON.stringify(price));
    // A row whose entry was replaced is written with the new entry's text.
    const replaced = { ...reading.row.entry, title: 'Other' };
    expect(jsonText(replaced)).toBe(JSON.stringify(replaced));
  });

  test('an entry over MAX_ENTRY_BYTES of JSON is refused, naming its largest field', () => {
    const entry = { ...readable('media-vault'), fullDescription: 'é'.repeat(MAX_ENTRY_BYTES / 2) };
    expect(refusal(entry)).toMatch(
      /^app media-vault: entry is larger than 262144 bytes as JSON \(\d+ bytes; its largest field is fullDescription \(262146 bytes\)\)$/,
    );
    const price = { products: [{ product_id: 'x'.repeat(MAX_ENTRY_BYTES) }] };
    expect(refusal({ app_entry: readable('media-vault'), price })).toContain('its largest field is price');
  });

  test('the title and description columns follow the views: what title(locale: "en-US") answers', () => {
    const cases: Record<string, unknown>[] = [
      readable('media-vault'),
      // A plain title in the source's language, the en-US text in i18n: the columns used to take the plain one.
      { name: 'app', version: '1', title: 'Medientresor', i18n: { 'en-US': { metadata: { title: 'Media Vault' } } } },
      { name: 'app', version: '1', title: { 'en-GB': 'Colour', 'de-DE': 'Farbe' }, description: { de: 'Nur Deutsch' } },
      {
        name: 'app',
        version: '1',
        title: { 'en-US': '', fr: 'Titre' },
        i18n: { en: { spec: { description: 'Spec' } } },
      },
      { name: 'app', version: '1' },
    ];
    for (const entry of cases) {
      const reading = readCatalogueEntry(String(entry.name), entry);
      expect(reading.ok).toBe(true);
      if (!reading.ok) continue;
      expect(reading.row.title, JSON.stringify(entry.title)).toBe(entryText(entry, 'title', 'en-US'));
      expect(reading.row.description).toBe(entryText(entry, 'description', 'en-US'));
    }
    const plain = readCatalogueEntry('app', cases[1]);
    expect(plain.ok && plain.row.title).toBe('Media Vault');
  });

  test('the title, description and search columns are cut at their bound, never inside an emoji', () => {
    // Each bound falls on the first half of an emoji: title unit 1,000, description unit 1,000,
    // search text unit 3,000 ("app t " and 999 x before the emoji).
    const title = `a${'😀'.repeat(600)}`;
    const description = `${'x'.repeat(999)}${'🚀'.repeat(1100)}`;
    for (const [entry, columns] of [
      [{ title }, { title: `a${'😀'.repeat(499)}` }],
      [
        { title: 'T', description },
        { description: 'x'.repeat(999), searchText: `app t ${'x'.repeat(999)}${'🚀'.repeat(997)}` },
      ],
    ] as const) {
      const reading = readCatalogueEntry('app', { name: 'app', version: '1', ...entry });
      expect(reading.ok && reading.row).toMatchObject(columns);
    }
  });
});

describe('version precedence', () => {
  test.each([
    ['1.10.0', '1.9.9', 1],
    ['v1.2.3', '1.2.3', 0],
    ['1.2', '1.2.0', 0],
    ['1.0.0.1', '1.0.0', 1],
    ['2.0.0-rc.1', '2.0.0', -1],
    ['2.0.0-alpha', '2.0.0-alpha.1', -1],
    ['2.0.0-alpha.beta', '2.0.0-alpha.1', 1],
    ['2.0.0-beta.11', '2.0.0-beta.2', 1],
    ['1.0.0+build.5', '1.0.0', 0],
    ['240915', '240101', 1],
    ['99999999999999999999.0', '99999999999999999998.9', 1],
    ['01.2.3', '1.2.3', 0],
  ])('%s against %s is %i', (a, b, expected) => {
    expect(compareVersions(a, b)).toBe(expected);
    expect(compareVersions(b, a)).toBe(expected === 0 ? 0 : -expected);
  });

  test('what is not a version cannot be ordered, so it is never an upgrade', () => {
    for (const bad of ['latest', '', 'v', '1..2', '1.2.3-', 'x'.repeat(200)]) {
      expect(compareVersions(bad, '1.0.0'), bad).toBeNull();
      expect(isNewerVersion(bad, '1.0.0')).toBe(false);
      expect(isNewerVersion('1.0.0', bad)).toBe(false);
    }
  });
});

const databases = await availableDatabases();

/** A source of the test's own (the default sources and their sync stay out of the way). */
const SOURCE = 'catalogue-test';

interface CatalogAppView {
  name: string;
  [field: string]: unknown;
}

// A list selects what a list view shows; the details come through `node`, as a frontend's
// detail page asks for them (MAX_QUERY_COST can refuse all of them for a whole page).
const CatalogListQuery = operation<
  { catalog: { totalCount: number; edges: { node: CatalogAppView }[] } },
  { sourceId: string; paid?: boolean | null; locale?: string | null }
>(`
  query CatalogList($sourceId: String!, $paid: Boolean, $locale: String) {
    catalog(sourceId: $sourceId, paid: $paid, first: 50) {
      totalCount
      edges { node { id name version paid categories icon title localizedTitle: title(locale: $locale) } }
    }
  }
`);

const CatalogDetailsQuery = operation<{ node: CatalogAppView | null }, { id: string; locale?: string | null }>(`
  query CatalogDetails($id: ID!, $locale: String) {
    node(id: $id) {
      ... on CatalogApp {
        name title localizedTitle: title(locale: $locale)
        description(locale: $locale) fullDescription(locale: $locale) upgradeDescription(locale: $locale)
        icon featuredImage promoteImages screenshots tags developer locales supportedArchitectures
        requirements { cpu { text value } memory { text value } disk { text value } gpu { text value } }
        entrances { name title host port icon authLevel openMethod invisible }
        versionHistory { version versionName mergedAt upgradeDescription(locale: $locale) }
        paid
        price {
          developer
          paid {
            productId type
            prices { chain tokenSymbol amount receiveWallet }
            descriptions { lang title description icon }
            description(locale: $locale) { lang title }
          }
          products { productId type prices { chain tokenSymbol amount receiveWallet } }
        }
      }
    }
  }
`);

interface InstalledView {
  appName: string;
  stage: string;
  installedVersion: string | null;
  latestVersion: string | null;
  upgradeAvailable: boolean;
  sourceRemoved: boolean;
  catalogApp: { name: string; version: string } | null;
}

const INSTALLED_FIELDS =
  'appName stage installedVersion latestVersion upgradeAvailable sourceRemoved catalogApp { name version }';

const InstalledAppQuery = operation<{ app: InstalledView | null }, { sourceId: string; appName: string }>(`
  query InstalledApp($sourceId: String!, $appName: String!) {
    app(sourceId: $sourceId, appName: $appName) { ${INSTALLED_FIELDS} }
  }
`);

const SnapshotUpgradesQuery = operation<{ runtimeSnapshot: { apps: InstalledView[] } }>(`
  query SnapshotUpgrades { runtimeSnapshot { apps { ${INSTALLED_FIELDS} } } }
`);

async function writeFullEntry(seed: Seeder, name: string) {
  const entry = fullEntry(name);
  return seed.db.catalogApp.create({
    data: {
      sourceId: SOURCE,
      appId: name,
      name,
      version: entry.version,
      versions: ['2.1.0', '2.0.0'],
      title: 'Media Vault',
      description: entry.description,
      searchText: `${name} media vault`,
      paid: true,
      price: PRICE,
      entry,
      categories: { create: [{ category: 'Entertainment' }] },
    },
  });
}

describe.each(databases)('the catalogue in the schema on %s', (kind) => {
  const test = seededTest(kind, { env: AUTH_ENV });

  /** The details of the app `id` in `locale`, as a detail page asks for them: in one document. */
  async function details(server: TestServer, id: string, locale?: string) {
    const variables = { id, ...(locale ? { locale } : {}) };
    return dataOf(await execute(server, CatalogDetailsQuery, variables, { token: TOKENS.alice })).node;
  }

  test('a catalogue entry with every field answers every typed field', async ({ server, seed, expect }) => {
    await seed.source({ sourceId: SOURCE, type: 'local' });
    await writeFullEntry(seed, 'media-vault');
    const list = dataOf(
      await execute(server, CatalogListQuery, { sourceId: SOURCE, locale: 'zh-CN' }, { token: TOKENS.alice }),
    ).catalog;
    expect(list.edges.map((edge) => edge.node)).toEqual([
      {
        id: expect.any(String),
        name: 'media-vault',
        version: '2.1.0',
        paid: true,
        categories: ['Entertainment'],
        icon: 'https://icons.example/media-vault.png',
        title: 'Media Vault',
        localizedTitle: '媒体库',
      },
    ]);
    const id = list.edges[0]?.node.id as string;
    expect(await details(server, id, 'zh-CN')).toEqual({
      name: 'media-vault',
      title: 'Media Vault',
      localizedTitle: '媒体库',
      description: '播放你的电影',
      fullDescription: '很长的描述',
      upgradeDescription: '扫描更快',
      icon: 'https://icons.example/media-vault.png',
      featuredImage: 'https://images.example/banner.png',
      promoteImages: ['https://images.example/1.png', 'https://images.example/2.png'],
      screenshots: [],
      tags: ['media', 'video'],
      developer: 'Vault Labs',
      locales: ['en-US', 'zh-CN'],
      supportedArchitectures: ['amd64', 'arm64'],
      requirements: {
        cpu: { text: '500m', value: 0.5 },
        memory: { text: '4Gi', value: 4294967296 },
        disk: { text: '21474836480', value: 21474836480 },
        gpu: { text: 'lots', value: null },
      },
      entrances: [
        {
          name: 'web',
          title: 'Media Vault',
          host: 'media-vault',
          port: 8096,
          icon: 'https://icons.example/web.png',
          authLevel: 'private',
          openMethod: 'window',
          invisible: false,
        },
        {
          name: 'api',
          title: null,
          host: null,
          port: null,
          icon: null,
          authLevel: null,
          openMethod: null,
          invisible: true,
        },
      ],
      versionHistory: [
        {
          version: '2.1.0',
          versionName: '10.9.0',
          mergedAt: '2026-06-07T19:47:07.288Z',
          upgradeDescription: 'Faster scans',
        },
        { version: '2.0.0', versionName: null, mergedAt: null, upgradeDescription: null },
      ],
      paid: true,
      price: {
        developer: 'Vault Labs',
        paid: {
          productId: 'media-vault-license',
          type: null,
          prices: [
            { chain: 'optimism', tokenSymbol: 'USDC', amount: '4.99', receiveWallet: '0xabc' },
            { chain: 'eth', tokenSymbol: 'USDT', amount: '5', receiveWallet: '0xdef' },
          ],
          descriptions: [
            { lang: 'en', title: 'Licence', description: 'Lifetime licence', icon: 'https://icons.example/l.png' },
            { lang: 'zh-CN', title: '许可证', description: '终身许可', icon: null },
          ],
          description: { lang: 'zh-CN', title: '许可证' },
        },
        products: [
          {
            productId: 'media-vault-storage',
            type: 'subscribe',
            prices: [{ chain: 'optimism', tokenSymbol: 'USDC', amount: '1.00', receiveWallet: '0xabc' }],
          },
        ],
      },
    });
    // Without a locale: en-US, the title column as before.
    expect(await details(server, id)).toMatchObject({
      title: 'Media Vault',
      localizedTitle: 'Media Vault',
      description: 'Stream your films',
      fullDescription: 'A **long** description',
      upgradeDescription: 'Faster scans',
      price: { paid: { description: { lang: 'en', title: 'Licence' } } },
    });
  });

  test('an entry with almost nothing in it still answers, with nulls and empty lists', async ({
    server,
    seed,
    expect,
  }) => {
    await seed.source({ sourceId: SOURCE, type: 'local' });
    await seed.db.catalogApp.create({
      data: {
        sourceId: SOURCE,
        appId: 'bare',
        name: 'bare',
        version: '1.0.0',
        versions: ['1.0.0'],
        searchText: 'bare',
        entry: { name: 'bare', version: '1.0.0', entrances: 'none', requiredCPU: null, i18n: [], price: 'free' },
      },
    });
    const { catalog } = dataOf(await execute(server, CatalogListQuery, { sourceId: SOURCE }, { token: TOKENS.alice }));
    const id = catalog.edges[0]?.node.id as string;
    expect(id).toBeDefined();
    expect(await details(server, id, 'fr')).toEqual({
      name: 'bare',
      title: null,
      localizedTitle: null,
      description: null,
      fullDescription: null,
      upgradeDescription: null,
      icon: null,
      featuredImage: null,
      promoteImages: [],
      screenshots: [],
      tags: [],
      developer: null,
      locales: [],
      supportedArchitectures: [],
      requirements: { cpu: null, memory: null, disk: null, gpu: null },
      entrances: [],
      versionHistory: [],
      paid: false,
      price: null,
    });
  });

  test('catalog(paid:) lists only paid or only free apps', async ({ server, seed, expect }) => {
    await seed.source({ sourceId: SOURCE, type: 'local' });
    await seed.catalogApp({ name: 'free-one', sourceId: SOURCE });
    await seed.catalogApp({ name: 'paid-one', sourceId: SOURCE, price: '4.99' });
    await seed.catalogApp({ name: 'free-two', sourceId: SOURCE });
    const names = async (paid: boolean | null) => {
      const { catalog } = dataOf(
        await execute(server, CatalogListQuery, { sourceId: SOURCE, paid }, { token: TOKENS.alice }),
      );
      return catalog.edges.map((edge) => edge.node.name).sort();
    };
    expect(await names(true)).toEqual(['paid-one']);
    expect(await names(false)).toEqual(['free-one', 'free-two']);
    expect(await names(null)).toEqual(['free-one', 'free-two', 'paid-one']);
  });

  test('the text for a locale a map has no exact key for is the same on both databases, whatever order the source wrote', async ({
    server,
    seed,
    expect,
  }) => {
    await seed.source({ sourceId: SOURCE, type: 'local' });
    // PostgreSQL keeps `entry` as jsonb, keys shorter first; SQLite keeps the source's order.
    const entry = {
      name: 'order-app',
      version: '1.0.0',
      title: { 'zh-TW': '繁體標題', 'zh-CN': '简体标题', 'fr-FR': 'Titre', 'de-DE': 'Titel' },
      description: { 'fr-FR': 'Description', de: 'Beschreibung' },
      i18n: {
        'pt-BR': { metadata: { fullDescription: 'BR' } },
        pt: { metadata: { fullDescription: 'PT' } },
        'es-419': { metadata: { fullDescription: 'LatAm' } },
        es: { metadata: { fullDescription: 'ES' } },
      },
    };
    await seed.db.catalogApp.create({
      data: {
        sourceId: SOURCE,
        appId: 'order-app',
        name: 'order-app',
        version: '1.0.0',
        versions: ['1.0.0'],
        searchText: 'order-app',
        entry,
      },
    });
    const id = dataOf(await execute(server, CatalogListQuery, { sourceId: SOURCE }, { token: TOKENS.alice })).catalog
      .edges[0]?.node.id as string;
    const read = async (locale: string) => {
      const node = (await details(server, id, locale)) as unknown as Record<string, string>;
      return [node.localizedTitle, node.description, node.fullDescription];
    };
    // The region first in code-unit order; the bare language before any region; else the first key.
    expect(await read('zh')).toEqual(['简体标题', 'Beschreibung', 'ES']);
    expect(await read('pt-PT')).toEqual(['Titel', 'Beschreibung', 'PT']);
    expect(await read('es-MX')).toEqual(['Titel', 'Beschreibung', 'ES']);
    expect(await read('en-US')).toEqual(['Titel', 'Beschreibung', 'ES']);
  });

  test('an exact translation anywhere wins, then the same script: Traditional Chinese reads Traditional text', async ({
    server,
    seed,
    expect,
  }) => {
    await seed.source({ sourceId: SOURCE, type: 'local' });
    const entries = [
      {
        name: 'traditional-in-i18n',
        version: '1.0.0',
        title: { 'en-US': 'Title', 'zh-CN': '简体标题', 'pt-BR': 'Título BR' },
        description: { 'en-US': 'Description' },
        i18n: {
          'zh-TW': { metadata: { title: '繁體標題', description: '繁體描述' } },
          'pt-PT': { metadata: { title: 'Título PT' } },
        },
      },
      // A Simplified request reads Simplified text from i18n rather than the map's Traditional one;
      // with no text in its script at all, it reads the other script rather than en-US.
      {
        name: 'simplified-in-i18n',
        version: '1.0.0',
        title: { 'en-US': 'Title', 'zh-TW': '繁體標題' },
        description: { 'en-US': 'Description', 'zh-HK': '繁體描述' },
        i18n: { 'zh-Hans': { metadata: { title: '简体标题' } } },
      },
    ];
    for (const entry of entries) {
      await seed.db.catalogApp.create({
        data: {
          sourceId: SOURCE,
          appId: entry.name,
          name: entry.name,
          version: '1.0.0',
          versions: ['1.0.0'],
          searchText: entry.name,
          entry,
        },
      });
    }
    const { catalog } = dataOf(await execute(server, CatalogListQuery, { sourceId: SOURCE }, { token: TOKENS.alice }));
    const idOf = (name: string) => catalog.edges.find((edge) => edge.node.name === name)?.node.id as string;
    const read = async (name: string, locale: string) => {
      const node = (await details(server, idOf(name), locale)) as unknown as Record<string, string>;
      return [node.localizedTitle, node.description];
    };
    for (const locale of ['zh-TW', 'zh-HK', 'zh-MO', 'zh-Hant', 'zh-Hant-TW', 'zh_tw']) {
      expect(await read('traditional-in-i18n', locale), locale).toEqual(['繁體標題', '繁體描述']);
    }
    for (const locale of ['zh-CN', 'zh', 'zh-SG', 'zh-Hans', 'zh-Hans-CN']) {
      expect(await read('traditional-in-i18n', locale), locale).toEqual(['简体标题', '繁體描述']);
      expect(await read('simplified-in-i18n', locale), locale).toEqual(['简体标题', '繁體描述']);
    }
    expect(await read('simplified-in-i18n', 'zh-HK')).toEqual(['繁體標題', '繁體描述']);
    expect(await read('traditional-in-i18n', 'pt-PT')).toEqual(['Título PT', 'Description']);
    expect(await read('traditional-in-i18n', 'pt')).toEqual(['Título BR', 'Description']);
    expect(await read('traditional-in-i18n', 'fr')).toEqual(['Title', 'Description']);
  });

  test('a locale longer than 35 characters or not a language tag is refused with VALIDATION', async ({
    server,
    seed,
    expect,
  }) => {
    await seed.source({ sourceId: SOURCE, type: 'local' });
    await seed.catalogApp({ name: 'one', sourceId: SOURCE });
    const id = dataOf(await execute(server, CatalogListQuery, { sourceId: SOURCE }, { token: TOKENS.alice })).catalog
      .edges[0]?.node.id as string;
    for (const locale of ['x'.repeat(36), 'en US']) {
      for (const response of [
        await execute(server, CatalogListQuery, { sourceId: SOURCE, locale }, { token: TOKENS.alice }),
        await execute(server, CatalogDetailsQuery, { id, locale }, { token: TOKENS.alice }),
      ]) {
        expect(new Set(errorCodes(response))).toEqual(new Set(['VALIDATION']));
        expect(response.errors?.[0]?.message).toMatch(/Argument "locale" must be a language tag/);
      }
    }
  });

  test('upgradeAvailable turns true once the catalogue moves ahead of the installed version', async ({
    server,
    seed,
    expect,
  }) => {
    await seed.source({ sourceId: SOURCE, type: 'local' });
    const row = await seed.catalogApp({ name: 'jellyfin', sourceId: SOURCE, versions: ['1.9.0'] });
    await seed.user('alice').app({ appName: 'jellyfin', sourceId: SOURCE, state: 'running', version: '1.9.0' });
    await seed.user('alice').app({ appName: 'installing', sourceId: SOURCE, state: 'downloading' });
    const read = async (appName: string) =>
      dataOf(await execute(server, InstalledAppQuery, { sourceId: SOURCE, appName }, { token: TOKENS.alice })).app;

    expect(await read('jellyfin')).toMatchObject({
      installedVersion: '1.9.0',
      latestVersion: '1.9.0',
      upgradeAvailable: false,
      sourceRemoved: false,
      catalogApp: { name: 'jellyfin', version: '1.9.0' },
    });
    // 1.10.0 follows 1.9.0 (not as text): an upgrade.
    await seed.db.catalogApp.update({ where: { id: row.id }, data: { version: '1.10.0' } });
    expect(await read('jellyfin')).toMatchObject({ latestVersion: '1.10.0', upgradeAvailable: true });
    // A catalogue moving back is no upgrade.
    await seed.db.catalogApp.update({ where: { id: row.id }, data: { version: '1.8.0' } });
    expect(await read('jellyfin')).toMatchObject({ latestVersion: '1.8.0', upgradeAvailable: false });
    // Nothing installed yet, nothing to upgrade (and no catalogue entry either).
    expect(await read('installing')).toMatchObject({
      installedVersion: null,
      upgradeAvailable: false,
      latestVersion: null,
      catalogApp: null,
    });
  });

  test('an app whose source was removed still answers, saying its source is gone', async ({ server, seed, expect }) => {
    await seed.source({ sourceId: SOURCE, type: 'local' });
    await seed.catalogApp({ name: 'gitea', sourceId: SOURCE, versions: ['2.0.0'] });
    await seed.user('alice').app({ appName: 'gitea', sourceId: SOURCE, state: 'running', version: '1.0.0' });
    const read = async () =>
      dataOf(await execute(server, InstalledAppQuery, { sourceId: SOURCE, appName: 'gitea' }, { token: TOKENS.alice }))
        .app;
    expect(await read()).toMatchObject({ upgradeAvailable: true, sourceRemoved: false });

    // What removeMarketSource leaves: no source row, no catalogue of it, the installed app.
    await seed.db.catalogApp.deleteMany({ where: { sourceId: SOURCE } });
    await seed.db.marketSource.delete({ where: { sourceId: SOURCE } });
    expect(await read()).toEqual({
      appName: 'gitea',
      stage: 'RUNNING',
      installedVersion: '1.0.0',
      latestVersion: null,
      upgradeAvailable: false,
      sourceRemoved: true,
      catalogApp: null,
    });
  });

  test('an app whose catalogue entry is gone while its source stays says so apart from a removed source', async ({
    server,
    seed,
    expect,
  }) => {
    await seed.source({ sourceId: SOURCE, type: 'local' });
    await seed.user('alice').app({ appName: 'dropped', sourceId: SOURCE, state: 'running' });
    const { app } = dataOf(
      await execute(server, InstalledAppQuery, { sourceId: SOURCE, appName: 'dropped' }, { token: TOKENS.alice }),
    );
    expect(app).toMatchObject({ catalogApp: null, latestVersion: null, sourceRemoved: false, upgradeAvailable: false });
  });
});

/**
 * A batched read of catalogue apps or sources by a list of keys, as the App fields' loaders send
 * them (the Syncer in the background reads sources one at a time, without IN).
 */
const isCatalogueLookup = (sql: string) => /FROM \S*[`"](CatalogApp|MarketSource)[`"] WHERE .*\bIN \(/.test(sql);

describe.each(databases)('catalogue fields of many installed apps on %s', (kind) => {
  const APPS = 12;
  const test = seededTest(kind, {
    env: AUTH_ENV,
    recordQueries: true,
    // The runtime store reads its apps at start: these are served from memory.
    preseed: async (seed) => {
      await seed.source({ sourceId: SOURCE, type: 'local' });
      for (let i = 0; i < APPS; i += 1) {
        await seed.catalogApp({ name: `app-${i}`, sourceId: SOURCE, versions: [i % 2 === 0 ? '2.0.0' : '1.0.0'] });
        for (const user of ['alice', 'bob']) {
          await seed.user(user).app({ appName: `app-${i}`, sourceId: SOURCE, state: 'running', version: '1.0.0' });
        }
      }
      // Installed from a source that is gone.
      await seed.user('alice').app({ appName: 'orphan', sourceId: 'removed-source', state: 'running' });
    },
  });

  test('a runtime snapshot answers them for every app with one query per field, none when unselected', async ({
    server,
    expect,
  }) => {
    server.queries.length = 0;
    const { runtimeSnapshot } = dataOf(await execute(server, SnapshotUpgradesQuery, {}, { token: TOKENS.ops }));
    const catalogueQueries = server.queries.filter(isCatalogueLookup);

    expect(runtimeSnapshot.apps).toHaveLength(2 * APPS + 1);
    for (const app of runtimeSnapshot.apps) {
      const index = Number(app.appName.split('-')[1]);
      if (app.appName === 'orphan') {
        expect(app).toMatchObject({ sourceRemoved: true, upgradeAvailable: false, catalogApp: null });
      } else {
        expect(app).toMatchObject({
          sourceRemoved: false,
          upgradeAvailable: index % 2 === 0,
          latestVersion: index % 2 === 0 ? '2.0.0' : '1.0.0',
          catalogApp: { name: app.appName },
        });
      }
    }
    // catalogApp, its entries (read once, then kept parsed), the versions (latestVersion and
    // upgradeAvailable share them), the sources.
    expect(catalogueQueries).toHaveLength(4);
    server.queries.length = 0;
    expect(dataOf(await execute(server, SnapshotUpgradesQuery, {}, { token: TOKENS.ops }))).toEqual({
      runtimeSnapshot,
    });
    expect(server.queries.filter(isCatalogueLookup)).toHaveLength(3);

    server.queries.length = 0;
    const plain = operation<{ runtimeSnapshot: { apps: { appName: string; stage: string }[] } }>(
      'query { runtimeSnapshot { apps { appName stage } } }',
    );
    expect(dataOf(await execute(server, plain, {}, { token: TOKENS.ops })).runtimeSnapshot.apps).toHaveLength(
      2 * APPS + 1,
    );
    expect(server.queries.filter(isCatalogueLookup)).toEqual([]);
  });
});
