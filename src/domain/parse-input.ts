import { z } from 'zod';
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

/**
 * What a one-line text shown to other people may not hold: control characters (a newline split
 * the table row or log line it was shown in) and the bidirectional formatting characters, which
 * reorder the text beside it wherever it is shown without isolation: a clone titled
 * "Mirror \u202egit" showed the entrance URL next to its title backwards, on the dashboard and in
 * any frontend that prints the two side by side.
 */
const UNSHOWABLE = /[\p{Cc}\u202A-\u202E\u2066-\u2069]/u;

/** A title a client writes for others to read: trimmed, 1 to `max` characters, nothing UNSHOWABLE. */
export const shownText = (label: string, max: number) =>
  z
    .string()
    .trim()
    .min(1, `${label} must not be empty`)
    .max(max, `${label} must be at most ${max} characters`)
    .refine(
      (text) => !UNSHOWABLE.test(text),
      `${label} must not contain control characters or bidirectional formatting characters (U+202A–U+202E, U+2066–U+2069)`,
    );
