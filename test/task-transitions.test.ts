import { describe, expect, test } from 'vitest';
import {
  canTaskMoveTo,
  isTerminal,
  TASK_STATUSES,
  TASK_TRANSITIONS,
  TERMINAL_STATUSES,
  taskStatusOf,
} from '../src/domain/tasks.js';

describe('task status transitions', () => {
  test('a terminal status is final: no move leaves it', () => {
    for (const status of TERMINAL_STATUSES) {
      expect(isTerminal(status)).toBe(true);
      expect(TASK_STATUSES.filter((to) => canTaskMoveTo(status, to))).toEqual([]);
    }
  });

  test('only PENDING and RUNNING are not terminal, and every terminal status is reachable from RUNNING', () => {
    expect(TASK_STATUSES.filter((status) => !isTerminal(status))).toEqual(['PENDING', 'RUNNING']);
    for (const status of TERMINAL_STATUSES) expect(canTaskMoveTo('RUNNING', status)).toBe(true);
  });

  test('a pending task is claimed, canceled or failed, and a running one may go back to the queue', () => {
    expect(TASK_TRANSITIONS.PENDING).toEqual(['RUNNING', 'CANCELED', 'FAILED']);
    expect(canTaskMoveTo('PENDING', 'COMPLETED')).toBe(false);
    expect(canTaskMoveTo('RUNNING', 'PENDING')).toBe(true);
  });

  test('a status column outside the enum is refused rather than passed on', () => {
    expect(taskStatusOf('RUNNING')).toBe('RUNNING');
    expect(() => taskStatusOf('running')).toThrow('unknown task status running');
  });
});
