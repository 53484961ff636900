import { z } from 'zod';
import { ValidationError } from './errors.js';

/**
 * Validates a mutation's input: the parsed value, or a ValidationError naming every bad field.
 * `field` names the input field when `input` is one field's value, so issues point at it.
 */
export function parseInput<S extends z.ZodType>(schema: S, input: unknown, field?: string): z.output<S> {
  const result = schema.safeParse(input);
  if (result.success) return result.data;
  const issues = result.error.issues.map((issue) => ({
    path: [...(field ? [field] : []), ...issue.path].join('.') || 'input',
    message: issue.message,
  }));
  throw new ValidationError(`Invalid input: ${issues.map((i) => `${i.path}: ${i.message}`).join('; ')}`, issues);
}

/** A length refusal that stops there: a rule chained after it (a pattern) would add a false second issue. */
export const lengthAlone = (error: string) => ({ error, abort: true });

/** A trimmed text of 1 to `max` characters. */
export const trimmed = (label: string, max: number) =>
  z
    .string()
    .trim()
    .min(1, lengthAlone(`${label} must not be empty`))
    .max(max, lengthAlone(`${label} must be at most ${max} characters`));

/**
 * What a one-line text shown to other people may not hold:
 * - control characters and the line and paragraph separators U+2028 and U+2029: a newline split
 *   the table row or log line it was shown in;
 * - format characters (\p{Cf}). The bidirectional embeddings, overrides and isolates reorder the
 *   text beside them wherever it is shown without isolation: a clone titled "Mirror \u202egit"
 *   showed the entrance URL next to its title backwards. The bidirectional marks (U+200E, U+200F,
 *   U+061C) move digits and brackets across the text beside them. The rest (zero-width space, soft
 *   hyphen, word joiner, byte order mark, invisible operators, …) draw nothing: a title made of
 *   them alone was blank, and among letters they make two titles that read alike differ.
 * Kept, because real titles need them and they only join or part the letters around them:
 * U+200C ZERO WIDTH NON-JOINER (Persian and Indic words are spelt with it), U+200D ZERO WIDTH
 * JOINER (emoji sequences such as woman + U+200D + laptop, Indic conjuncts), and the tag characters of an emoji tag
 * sequence (the flags of England, Scotland and Wales), there only: elsewhere they hide text.
 */
const UNSHOWABLE = /(?![\u200C\u200D])[\p{Cc}\p{Cf}\p{Zl}\p{Zp}]/u;
/** A black flag (U+1F3F4), tag characters and the cancel tag (U+E007F): a subdivision's flag. */
const EMOJI_TAG_SEQUENCE = /\u{1F3F4}[\u{E0020}-\u{E007E}]+\u{E007F}/gu;
/**
 * A character that draws something: a letter, digit, punctuation mark or symbol, other than the
 * default-ignorable ones that render as nothing (the Hangul fillers U+3164 and U+FFA0 are letters)
 * and the blank braille pattern U+2800 (a symbol with no dots). A title of spaces, combining marks
 * (U+034F), variation selectors or U+2800 alone showed as blank.
 */
const VISIBLE = /(?!\p{Default_Ignorable_Code_Point}|\u2800)[\p{L}\p{N}\p{P}\p{S}]/u;

/** Why a (trimmed, non-empty) text cannot be shown as one line to others, or null. */
function unshowable(text: string): string | null {
  if (UNSHOWABLE.test(text.replace(EMOJI_TAG_SEQUENCE, ''))) {
    return 'must not contain control characters, line or paragraph separators or invisible format characters (bidirectional marks and controls such as U+200F and U+202E, zero-width spaces, soft hyphens; U+200C and U+200D are allowed)';
  }
  return VISIBLE.test(text) ? null : 'must contain a visible character (a letter, digit, punctuation mark or symbol)';
}

/** shownText's rule as the schema describes it. */
export const SHOWN_TEXT_RULE =
  'at least one visible character; no control characters, line or paragraph separators, or invisible format characters such as bidirectional marks and controls, zero-width spaces and soft hyphens (zero-width joiner and non-joiner are allowed)';

/** A title a client writes for others to read: trimmed, 1 to `max` characters, visible, nothing UNSHOWABLE. */
export const shownText = (label: string, max: number) =>
  z
    .string()
    .trim()
    .min(1, `${label} must not be empty`)
    .max(max, `${label} must be at most ${max} characters`)
    .superRefine((text, context) => {
      const problem = text ? unshowable(text) : null;
      if (problem) context.addIssue({ code: 'custom', message: `${label} ${problem}` });
    });
