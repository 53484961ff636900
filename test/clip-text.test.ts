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

describe('a cut keeps whole user-perceived characters', () => {
  const family = '👨‍👩‍👧'; // three people joined by U+200D: 8 UTF-16 units, one character on screen
  test('a family emoji, a flag, a skin tone and an accent are kept whole or left out whole', () => {
    expect(clipUnits(`ab${family}`, 9)).toBe('ab');
    expect(clipUnits(`ab${family}c`, 10)).toBe(`ab${family}`);
    expect(clipUnits('ab🇩🇪', 5)).toBe('ab'); // half a flag is a different flag-less letter
    expect(clipUnits('ab👍🏽', 5)).toBe('ab'); // not a thumb without its tone
    expect(clipUnits('cafe\u0301s', 4)).toBe('caf'); // not "cafe" where the source wrote "café"
    expect(clipUnits('cafe\u0301s', 5)).toBe('cafe\u0301');
  });
  test('a cluster longer than the bound alone is cut by code point', () => {
    const zalgo = `z${'\u0301'.repeat(20)}`;
    expect(clipUnits(zalgo, 5)).toBe(zalgo.slice(0, 5));
    expect(clipUnits(`${family}${family}`, 4)).toBe('👨‍'); // whole code points, no lone half
  });
  test('a cut at the bound of a long text looks only at the text before it', () => {
    const text = `${'a'.repeat(999)}🇩🇪${'b'.repeat(5000)}`;
    expect(clipUnits(text, 1000)).toBe('a'.repeat(999));
    expect(clipUnits(text, 1003)).toBe(`${'a'.repeat(999)}🇩🇪`);
  });
});
