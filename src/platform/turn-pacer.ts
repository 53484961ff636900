import { setImmediate } from 'node:timers/promises';

/**
 * How long a stretch of CPU work (a catalogue sync's planning and reading) may hold the event loop
 * before it gives it a turn: every other request, socket and timer of the process waits meanwhile.
 */
export const TURN_BUDGET_MS = 20;

/**
 * For a long loop of small steps on the event loop: `await pace()` between steps resolves at once
 * until `budgetMs` have passed since the last turn it gave, and then after one turn of the loop
 * (setImmediate: pending I/O, such as a request or a health check, is served first). Steps run
 * side by side (detail batches) may share one pacer. Time spent waiting elsewhere counts too, so
 * the first step after a wait may give a turn it did not need: it costs microseconds.
 */
export function turnPacer(budgetMs = TURN_BUDGET_MS): () => Promise<void> {
  let since = performance.now();
  return async () => {
    if (performance.now() - since < budgetMs) return;
    await setImmediate();
    since = performance.now();
  };
}
