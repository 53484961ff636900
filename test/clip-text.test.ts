import { describe, expect, test } from 'vitest';
import { characterCount, clipUnits, longerThan } from '../src/domain/text-length.js';
import { clipText } from '../src/platform/clip-text.js';

describe('stored texts cut to their bound', () => {
  test('a cut never splits an emoji into a lone surrogate', () => {
    const text = `${'a'.repeat(8)}😀😀`; // the first emoji spans units 8 and 9
    expect(clipText(text, 10)).toBe(`${'a'.repeat(8)}…`);
    expect(clipText(text, 11)).toBe(`${'a'.repeat(8)}😀…`);
    expect(clipText(text, 12)).toBe(text);
    for (let max = 2; max <= 12; max++) expect(clipText(text, max)).not.toMatch(/[\uD800-\uDBFF](?![\uDC00-\uDFFF])/);
  });
  test('a cut without a mark keeps whole characters only, up to the bound', () => {
    const text = `${'a'.repeat(8)}😀😀`;
    expect(clipUnits(text, 9)).toBe('a'.repeat(8));
    expect(clipUnits(text, 10)).toBe(`${'a'.repeat(8)}😀`);
    expect(clipUnits(text, 11)).toBe(`${'a'.repeat(8)}😀`);
    expect(clipUnits(text, 12)).toBe(text);
    expect(clipUnits('😀', 1)).toBe('');
  });
  test('lengths count characters, not UTF-16 units', () => {
    expect(characterCount('😀é')).toBe(2);
    expect(longerThan('😀😀', 2)).toBe(false);
    expect(longerThan('😀😀a', 2)).toBe(true);
  });
});
