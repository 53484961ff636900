import { describe, expect, test } from 'vitest';
import { parse } from 'yaml';
import { yamlNestsDeeperThan } from '../src/services/yaml-depth.js';

/**
 * The depth scan a manifest passes before the YAML parser (src/services/yaml-depth.ts): never
 * deeper than what the parser finds, so no manifest it accepts is refused by the scan, and
 * pathological nesting of every kind refused without parsing.
 */

/** Nesting of arrays and objects, as `unstorable` counts it (the outermost collection is 1). */
function depthOf(value: unknown): number {
  if (value === null || typeof value !== 'object') return 0;
  return 1 + Math.max(0, ...Object.values(value).map(depthOf));
}

/** The smallest bound the scan lets `text` through. */
function scanned(text: string): number {
  let max = 0;
  while (yamlNestsDeeperThan(text, max)) max++;
  return max;
}

describe('yamlNestsDeeperThan', () => {
  test.each([
    ['flow collections', 'a: [1, [2, {b: [3]}]]\n', 5],
    ['block maps', 'a:\n  b:\n    c: 1\n', 3],
    ['compact sequences', 'a:\n  - - - x\n', 4],
    ['a block scalar of ever deeper lines', 'a: |\n  x:\n    y:\n      z: [[[[[\nb: 1\n', 1],
    ['a folded one, with a comment', 'a: >- # note\n  [[[[\n  x: y\nb:\n  c: 1\n', 2],
    ['brackets and quotes in plain text', "title: don't [ever\nb: it's { fine\nc: [1]\n", 2],
    ['a quoted key with brackets', '"a[": {b: 1}\n', 2],
    ['a flow collection over lines', 'a: [1,\n  [2,\n   [3]]]\nb: 1\n', 4],
    ['a plain scalar over lines that read like items', 'a: long text\n  - more text\n    - and more\nb: 1\n', 1],
    ['a comment with brackets', 'a: 1 # [[[[ {{{\nb: "x # [" \n', 1],
    ['a quoted scalar over lines', 'a: "line [\n  more [ { "\nb: [1]\n', 2],
    ['anchors and documents', '---\na: &x\n  b: [1]\nc: *x\n...\n', 3],
    ['an anchor and a tag before a flow collection', 'a: &x !t [[1]]\nb: !!map {c: [1]}\n', 3],
    ['a verbatim tag and anchors in flow', 'a: !<tag:yaml.org,2002:seq> [&y [1], !t {b: [2]}]\n', 4],
    ['quotes inside plain scalars in flow', "a: [it's, b'c, [1], {d: e'f}]\n", 3],
    ['a plain scalar in flow going on over lines', "a: [b\n  'c, [1]]\n", 3],
    ['a quoted key and value in flow without spaces', '{"a":\'[b\'}\n', 1],
  ])('%s: counted as the parser nests it', (_name, text, depth) => {
    expect(depthOf(parse(text))).toBe(depth);
    expect(scanned(text)).toBe(depth);
  });

  test('a sequence at its key’s indentation is undercounted, never overcounted', () => {
    const text = 'a:\n- b: 1\n  c:\n  - d\n';
    expect(depthOf(parse(text))).toBe(4);
    expect(scanned(text)).toBeLessThanOrEqual(4);
  });

  test.each([
    ['100,000 `[`', `deep: ${'['.repeat(100_000)}`],
    ['50,000 `{a: `', '{a: '.repeat(50_000)],
    ['100,000 compact `- `', `${'- '.repeat(100_000)}x`],
    ['100,000 `[` after an anchor', `extra: &a ${'['.repeat(100_000)}`],
    ['100,000 `[` after a tag', `extra: !t ${'['.repeat(100_000)}`],
    ['100,000 `[` after a verbatim tag and an anchor', `extra: !<tag:x> &a ${'['.repeat(100_000)}`],
    ['20,000 `{a: ` after a tag', `extra: !t ${'{a: '.repeat(20_000)}`],
    ['100,000 `[` after a quote in a plain scalar in flow', `extra: [a'b, ${'['.repeat(100_000)}]`],
    ['100,000 `[` after `a:` and a quote in a flow map', `extra: {a:'b ${'['.repeat(100_000)}' }`],
    ['100,000 `[` after a quote on the next line of a flow plain scalar', `extra: [a\n'b, ${'['.repeat(100_000)}]`],
    ['100,000 `[` after a quoted value on its line', `extra: "b" ${'['.repeat(100_000)}`],
    ['100,000 `[` on the line after a quoted value', `extra: "b"\n  ${'['.repeat(100_000)}`],
    // Not valid YAML (props before a compact sequence), yet the parser nests each `- `.
    ['20,000 compact `- ` after an anchor', `extra:\n- &a ${'- '.repeat(20_000)}x`],
    ['20,000 compact `- ` after a tag', `extra:\n- !t ${'- '.repeat(20_000)}x`],
    ['700 indented keys', `a:\n${Array.from({ length: 700 }, (_, i) => `${' '.repeat(i + 1)}k:`).join('\n')}`],
  ])('%s is refused at the bound of 32', (_name, text) => {
    expect(yamlNestsDeeperThan(text, 32)).toBe(true);
  });

  test('32 levels pass the bound of 32, 33 do not', () => {
    expect(yamlNestsDeeperThan(`a: ${'['.repeat(31)}${']'.repeat(31)}`, 32)).toBe(false);
    expect(yamlNestsDeeperThan(`a: ${'['.repeat(32)}${']'.repeat(32)}`, 32)).toBe(true);
  });
});
