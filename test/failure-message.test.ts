import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, expect, test } from 'vitest';
import { failureMessage } from '../src/db/availability.js';
import { createPrismaClient } from '../src/db/client.js';

const directory = mkdtempSync(path.join(tmpdir(), 'market-failure-'));
afterAll(() => rmSync(directory, { recursive: true, force: true }));

test('a Prisma error is shown by its code; its message (as logged) quotes no source file, line or argument', async () => {
  // A real error: a database file without the schema (never migrated).
  const db = createPrismaClient(`file:${path.join(directory, 'empty.db')}`);
  try {
    const error = await db.task.findUnique({ where: { taskId: 'an-argument-value' } }).then(
      () => null,
      (caught: unknown) => caught,
    );
    // Prisma's default format quoted the calling file and its lines, and the query's arguments.
    expect((error as Error).message.trim()).toBe(
      'Invalid `prisma.task.findUnique()` invocation:\n\n\nThe table `main.Task` does not exist in the current database.',
    );
    expect(failureMessage(error)).toBe('database error P2021');
  } finally {
    await db.$disconnect();
  }
});

test('any other error: its first line, bounded', () => {
  expect(failureMessage(new Error('app service is unreachable: ECONNREFUSED\n    at socket.js:1'))).toBe(
    'app service is unreachable: ECONNREFUSED',
  );
  expect(failureMessage(new Error('x'.repeat(1000)))).toHaveLength(300);
  expect(failureMessage('a string thrown')).toBe('a string thrown');
});
