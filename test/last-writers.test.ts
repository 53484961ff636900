import { describe, expect, test } from 'vitest';
import { LastWriters } from '../src/runtime/last-writers.js';

describe('LastWriters: when an instance reads its own rows again (cluster mode)', () => {
  test('its entry right after another instance’s entry for the same row: read again', () => {
    const writers = new LastWriters();
    // B read the row later (newer) but appended first; A's older read comes back after it.
    expect(writers.note(['task t1'], false)).toEqual([]);
    expect(writers.note(['task t1', 'app u/s/a'], true)).toEqual(['task t1']);
    // A's confirming read comes back after A's own entry: nothing more to read.
    expect(writers.note(['task t1'], true)).toEqual([]);
  });

  test('a row only this instance writes is never read twice, and others’ entries ask for nothing', () => {
    const writers = new LastWriters();
    for (let i = 0; i < 5; i += 1) expect(writers.note(['task t1', 'app u/s/a'], true)).toEqual([]);
    expect(writers.note(['task t1'], false)).toEqual([]);
    expect(writers.note(['app u/s/a'], false)).toEqual([]);
    expect(writers.note(['task t1', 'app u/s/a', 'task t2'], true)).toEqual(['task t1', 'app u/s/a']);
  });
});
