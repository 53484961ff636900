import { Writable } from 'node:stream';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { createLogger } from '../src/platform/logger.js';
import { startPeriodicJob } from '../src/platform/periodic-job.js';
import { RepeatedFailure } from '../src/platform/repeated-failure.js';

interface Line {
  level: number;
  msg: string;
  failures?: number;
  failingForMs?: number;
  time?: number;
  job?: string;
  err?: { message: string; stack?: string };
}

/** A logger whose lines the test reads back, as an operator's log collector would get them. */
function capturedLogger() {
  const lines: Line[] = [];
  const sink = new Writable({
    write(chunk, _encoding, done) {
      for (const text of String(chunk).split('\n').filter(Boolean)) lines.push(JSON.parse(text));
      done();
    },
  });
  return { logger: createLogger('info', sink), lines };
}

/**
 * A "history cleanup" job every 1 ms whose runs fail ('fail', "database away") or succeed in this
 * order (then succeed); `done` settles once the last of them has run.
 */
function jobThrough(outcomes: ('fail' | 'ok')[], logger: ReturnType<typeof createLogger>) {
  let runs = 0;
  let settled!: () => void;
  const done = new Promise<void>((resolve) => {
    settled = resolve;
  });
  const job = startPeriodicJob(
    'history cleanup',
    1,
    async () => {
      const outcome = outcomes[runs] ?? 'ok';
      runs += 1;
      if (runs === outcomes.length) settled();
      if (outcome === 'fail') throw new Error('database away');
    },
    logger,
    (error) => (error as Error).message,
  );
  return { job, done };
}

describe('a failure that repeats (an outage) reaches the log now and then, and its end too', () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  it('logs the first failure in full, not the failures that follow it (whatever their message), and the recovery', () => {
    const { logger, lines } = capturedLogger();
    const failures = new RepeatedFailure(logger, 'outbox: claiming due messages', 'warn');
    const away = new Error("Can't reach database server at 127.0.0.1:5432");
    for (let i = 0; i < 50; i += 1) failures.failed(away);
    failures.failed(new Error('Timed out fetching a new connection from the connection pool'));
    failures.failed(new Error('Timed out fetching a new connection from the connection pool'));
    failures.succeeded();
    failures.succeeded(); // nothing to tell any more

    expect(lines.map(({ level, msg, failures }) => ({ level, msg, failures }))).toEqual([
      { level: 40, msg: 'outbox: claiming due messages failed', failures: 1 },
      { level: 30, msg: 'outbox: claiming due messages recovered', failures: 52 },
    ]);
    expect(lines[0]?.err?.message).toBe(away.message);
    expect(lines[0]?.err?.stack).toContain('repeated-failure.test.ts');
  });

  it('work that fails every other run (a flapping connection) logs two outages a minute, not a stack and a recovery per run', () => {
    vi.useFakeTimers({ now: 0, toFake: ['Date'] });
    const { logger, lines } = capturedLogger();
    const failures = new RepeatedFailure(logger, 'outbox: claiming due messages', 'warn', 60_000);
    const away = new Error('Connection terminated unexpectedly');
    for (let second = 0; second < 120; second += 2) {
      vi.setSystemTime(second * 1000);
      failures.failed(away);
      vi.setSystemTime(second * 1000 + 1000);
      failures.succeeded();
    }
    expect(lines.map(({ msg, time }) => `${msg} at ${time}`)).toEqual([
      'outbox: claiming due messages failed at 0',
      'outbox: claiming due messages recovered at 1000',
      'outbox: claiming due messages failed at 2000',
      'outbox: claiming due messages recovered at 3000',
      'outbox: claiming due messages failed at 60000',
      'outbox: claiming due messages recovered at 61000',
      'outbox: claiming due messages failed at 62000',
      'outbox: claiming due messages recovered at 63000',
    ]);
    // A new outage a minute after the last ones is told in full again.
    expect(lines[4]).toMatchObject({ failures: 1, err: { message: away.message } });
  });

  it('reminds that the same failure goes on at most once per interval, with the count and since when', () => {
    vi.useFakeTimers({ now: 0, toFake: ['Date'] });
    const { logger, lines } = capturedLogger();
    const failures = new RepeatedFailure(logger, 'catalogue sync', 'error', 60_000);
    const away = new Error('database away');
    for (let second = 0; second <= 130; second += 5) {
      vi.setSystemTime(second * 1000);
      failures.failed(second === 60 ? new Error('connection reset') : away);
    }
    expect(
      lines.map(({ msg, failures, failingForMs, err }) => ({ msg, failures, failingForMs, error: err?.message })),
    ).toEqual([
      { msg: 'catalogue sync failed', failures: 1, failingForMs: undefined, error: 'database away' },
      { msg: 'catalogue sync still failing', failures: 13, failingForMs: 60_000, error: 'connection reset' },
      { msg: 'catalogue sync still failing', failures: 25, failingForMs: 120_000, error: 'database away' },
    ]);
    vi.setSystemTime(131_000);
    failures.succeeded();
    expect(lines.at(-1)).toMatchObject({ msg: 'catalogue sync recovered', failures: 27, failingForMs: 131_000 });
  });

  it('a periodic job that fails at every run logs its first failure and its recovery, with its status kept', async () => {
    const { logger, lines } = capturedLogger();
    const { job, done } = jobThrough([...Array(20).fill('fail'), 'ok'], logger);
    await job.firstRun;
    expect(job.status().lastError).toBe('database away');
    await done;
    await job.stop();

    expect(lines.map(({ msg, job, failures }) => ({ msg, job, failures }))).toEqual([
      { msg: 'history cleanup failed', job: 'history cleanup', failures: 1 },
      { msg: 'history cleanup recovered', job: 'history cleanup', failures: 20 },
    ]);
    expect(job.status().lastError).toBeNull();
  });

  it('a periodic job that fails again right after it recovered logs the new outage at once, with its own duration', async () => {
    const { logger, lines } = capturedLogger();
    // Two outages of three runs, the second right after the first's recovery, then success.
    const { job, done } = jobThrough(['fail', 'fail', 'fail', 'ok', 'fail', 'fail', 'fail', 'ok'], logger);
    await done;
    await job.stop();

    expect(lines.map(({ msg, failures }) => ({ msg, failures }))).toEqual([
      { msg: 'history cleanup failed', failures: 1 },
      { msg: 'history cleanup recovered', failures: 3 },
      { msg: 'history cleanup failed', failures: 1 },
      { msg: 'history cleanup recovered', failures: 3 },
    ]);
    // The second outage's own duration: from its own failed line, not from the first outage's.
    const [, , secondFailure, secondRecovery] = lines;
    expect(secondRecovery?.failingForMs).toEqual(expect.any(Number));
    expect(secondRecovery?.failingForMs).toBeLessThanOrEqual(
      (secondRecovery?.time ?? 0) - (secondFailure?.time ?? Number.POSITIVE_INFINITY) + 2,
    );
  });

  it('a job whose interval is longer than a Node timer can wait runs once, not back to back', async () => {
    const { logger } = capturedLogger();
    let runs = 0;
    // 3 × the longest PAYMENT_POLL_INTERVAL_MS: Node takes an interval over 2^31 - 1 ms as 1 ms.
    const job = startPeriodicJob(
      'payment polling recovery',
      3 * (2 ** 31 - 1),
      async () => {
        runs += 1;
      },
      logger,
      String,
    );
    await job.firstRun;
    // A window in which an interval of 1 ms would have run the job dozens of times.
    await new Promise((resolve) => setTimeout(resolve, 50));
    await job.stop();
    expect(runs).toBe(1);
  });
});
