import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';

/**
 * The size rule of src/ (the function rule is biome's `noExcessiveLinesPerFunction`, and the folder
 * rule is dependency-cruiser's, both run by `npm test`): a file a reader can hold in mind.
 */
const MAX_LINES = 400;
const SRC = path.join(import.meta.dirname, '..', 'src');

function sourceFiles(): string[] {
  return readdirSync(SRC, { recursive: true, encoding: 'utf8' })
    .filter((file) => file.endsWith('.ts') && !file.startsWith(`generated${path.sep}`))
    .map((file) => path.join('src', file));
}

describe('source layout', () => {
  it(`keeps every source file under ${MAX_LINES} lines`, () => {
    const tooLong = sourceFiles()
      .map((file) => ({ file, lines: readFileSync(path.join(SRC, '..', file), 'utf8').split('\n').length }))
      .filter(({ lines }) => lines > MAX_LINES);
    expect(tooLong).toEqual([]);
  });
});
