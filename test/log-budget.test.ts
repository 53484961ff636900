import { expect, test } from 'vitest';
import { LogBudget } from '../src/platform/log-budget.js';

test('a budget of 3 lines a minute lets 3 through, leaves the rest out, and the next window tells how many', () => {
  let now = 1_000;
  const budget = new LogBudget(3, 60_000, () => now);
  const first = Array.from({ length: 10 }, () => budget.take());
  expect(first.slice(0, 3)).toEqual([{ leftOut: 0 }, { leftOut: 0 }, { leftOut: 0 }]);
  expect(first.slice(3).every((taken) => taken === null)).toBe(true);
  now += 59_999;
  expect(budget.take()).toBeNull();
  now += 1;
  expect(budget.take()).toEqual({ leftOut: 8 });
  expect(budget.take()).toEqual({ leftOut: 0 });
});
