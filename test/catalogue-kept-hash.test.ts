import { describe, expect, test } from 'vitest';
import { keptHash } from '../src/services/catalogue-plan.js';

/** The hash a sync keeps for the next poll (catalogue-plan.ts), the rule the Syncer's tests exercise over HTTP. */

describe('keptHash', () => {
  test('an index that agrees with the hash call is kept under that hash', () => {
    expect(keptHash('h-4', 'h-4', 'h-3')).toEqual({ hash: 'h-4', lag: null });
  });

  test('an index that moved with a hash call of its own keeps the hash call answer, so unchanged polls stay cheap', () => {
    expect(keptHash('published:h-4', 'h-4', 'published:h-3')).toEqual({ hash: 'published:h-4', lag: null });
    expect(keptHash('published:h-4', 'h-4', null)).toEqual({ hash: 'published:h-4', lag: null });
  });

  test('an index still at the stored hash while the hash call moved is kept under its own hash and said to lag', () => {
    expect(keptHash('h-4', 'h-3', 'h-3')).toEqual({
      hash: 'h-3',
      lag: 'the index (info) still has hash h-3 while the hash call answers h-4: it is read again at the next sync',
    });
  });
});
