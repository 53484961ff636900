import { readFileSync } from 'node:fs';
import { describe, expect, test } from 'vitest';
import { readBundledFile } from '../src/adapters/market-source/answers.js';
import { readCatalogueEntry } from '../src/domain/catalogue-entry.js';
import { fakeEntry } from './support/fake-market-source.js';

/**
 * readCatalogueEntry checks the entry's shape by hand for the entries it accepts and leaves the
 * rest to zod, which names the fault: at every bound, and at the edges where the two could differ
 * (records zod takes or refuses for their prototype, keys or constructor), an entry is read or
 * refused exactly as zod alone decided, with zod's words.
 */

const ID = 'a1b2c3d4';
const read = (fields: Record<string, unknown>) => {
  const reading = readCatalogueEntry(ID, { ...fakeEntry('notes'), ...fields });
  return reading.ok ? 'read' : reading.reason.replace(`app ${ID}: `, '');
};

describe('the shape of a catalogue entry', () => {
  test('each field at its bound is read, one past it is refused naming the field and its bound', () => {
    expect(
      read({ version: '1'.repeat(64), cfgType: 'c'.repeat(32), categories: Array(32).fill('c'.repeat(128)) }),
    ).toBe('read');
    expect(read({ categories: null, versionHistory: null, i18n: null, price: null })).toBe('read');
    // A Go source's empty map: no title or description of its own (its texts in i18n).
    expect(read({ title: null, description: null })).toBe('read');
    expect(read({ version: '' })).toBe('version must not be empty');
    expect(read({ version: '1'.repeat(65) })).toBe('version must be at most 64 characters');
    const cfgTypeRule = 'cfgType must be a lowercase name (a-z, 0-9, "-"), at most 32 characters';
    expect(read({ cfgType: 'c'.repeat(33) })).toBe(cfgTypeRule);
    // Sent to the app service: a name, not a path, or empty (a Go source's unset field).
    for (const cfgType of ['../../evil', 'App', 'app\n', '-app', 'a b']) expect(read({ cfgType })).toBe(cfgTypeRule);
    for (const cfgType of ['', 'app', 'middleware', 'recommend', 'model-2']) expect(read({ cfgType })).toBe('read');
    expect(read({ categories: Array(33).fill('c') })).toBe('categories must list at most 32');
    expect(read({ categories: ['c'.repeat(129)] })).toBe('categories.0 must be at most 128 characters');
    expect(read({ versionHistory: [{ mergedAt: '2026-01-01T00:00:00Z' }] })).toBe(
      'versionHistory.0.version Invalid input: expected string, received undefined',
    );
    expect(read({ versionHistory: [{ version: 7 }] })).toBe(
      'versionHistory.0.version Invalid input: expected string, received number',
    );
    expect(read({ i18n: [] })).toBe('i18n Invalid input: expected record, received array');
    expect(read({ price: 'free' })).toBe('price Invalid input: expected record, received string');
    expect(read({ title: { 'en-US': 3 } })).toBe('title must be a text or an object of texts by locale');
    expect(read({ name: '-notes' })).toBe(
      'name must start with a letter or digit and may contain letters, digits, ".", "_" and "-" (at most 128)',
    );
  });

  test("versions, the entry's and its history's, follow Helm's rule for a chart version", () => {
    for (const version of ['1.2.3', 'v1.10', '2', '2.0.0-beta.2', '1.0.0+build.7', '1.120.1', '30.0.2']) {
      expect(read({ version, versionHistory: [{ version }, { version: '0.1.0' }] })).toBe('read');
    }
    const refused = 'is not a SemVer version (e.g. 1.2.3)';
    for (const version of ['../../x', '1.0.0\nnewline', '1.0.0 ', 'latest', '1.0.0.1', '1.0.0/..', '1.0.0-']) {
      expect(read({ version })).toBe(`version ${refused}`);
      expect(read({ versionHistory: [{ version: '1.0.0' }, { version }] })).toBe(`versionHistory.1.version ${refused}`);
    }
    expect(read({ versionHistory: [{ version: '' }] })).toBe('versionHistory.0.version must not be empty');
  });

  test("every app of the project's bundled catalogue is read, the versions of its history included", () => {
    const file = JSON.parse(readFileSync(new URL('../catalogue/bundled.json', import.meta.url), 'utf8'));
    const { index, entries } = readBundledFile(file, 'bundled');
    expect(entries.size).toBe(index.apps.length);
    const readings = [...entries].map(([id, entry]) => readCatalogueEntry(id, entry));
    expect(readings.filter((reading) => !reading.ok)).toEqual([]);
    const versions = readings.flatMap((reading) => (reading.ok ? reading.row.versions : []));
    expect(versions.length).toBeGreaterThan(entries.size);
  });

  test('records zod takes are read, records it refuses are refused', () => {
    expect(read({ title: Object.assign(Object.create(null), { 'en-US': 'Notes' }) })).toBe('read');
    expect(read({ title: { 'en-US': 'Notes', constructor: 'Notes' } })).toBe('read');
    expect(read({ title: JSON.parse('{"en-US":"Notes","__proto__":1}') })).toBe('read');
    expect(read({ title: { 'en-US': 'Notes', [Symbol('hidden')]: 'x' } })).toBe(
      'title must be a text or an object of texts by locale',
    );
    expect(
      read({
        title: new (class Text {
          'en-US' = 'Notes';
        })(),
      }),
    ).toBe('title must be a text or an object of texts by locale');
    expect(read({ i18n: { constructor: () => 1 } })).toBe('i18n Invalid input: expected record, received object');
  });
});
