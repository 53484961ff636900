import type { z } from 'zod';
import { ValidationError } from './errors.js';

/** Validates a mutation's input: the parsed value, or a ValidationError naming every bad field. */
export function parseInput<S extends z.ZodType>(schema: S, input: unknown): z.output<S> {
  const result = schema.safeParse(input);
  if (result.success) return result.data;
  const issues = result.error.issues.map((issue) => ({
    path: issue.path.join('.') || 'input',
    message: issue.message,
  }));
  throw new ValidationError(`Invalid input: ${issues.map((i) => `${i.path}: ${i.message}`).join('; ')}`, issues);
}
