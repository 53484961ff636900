/**
 * Lengths of text as the bounds count them: in characters (Unicode code points), as zod's string
 * bounds count them, so that every bound of the API agrees (an emoji is one character, not the two
 * UTF-16 units `String.length` counts: 101 emoji were "more than 200 characters" to one bound and
 * 101 to another). A combining sequence is still several (as in most databases' `length`).
 */
export function characterCount(text: string): number {
  let count = 0;
  for (const _ of text) count++;
  return count;
}

/** Whether `text` holds more than `max` characters; counted only past `max` UTF-16 units, an upper bound. */
export function longerThan(text: string, max: number): boolean {
  return text.length > max && characterCount(text) > max;
}

/**
 * `text` cut to at most `max` UTF-16 units (the bound of a stored column or message), at the end of
 * a user-perceived character (a grapheme cluster: Intl.Segmenter): never between the two halves of
 * a surrogate pair (a lone half is not text; Prisma's JSON protocol refuses it, "unexpected end of
 * hex escape", PostgreSQL too, and a raw driver stored U+FFFD), nor inside a family emoji (its
 * people joined by U+200D), a flag (two regional indicators: half of 🇩🇪 is a lone 🇩), a skin
 * tone or a base letter's accents (a title ending in "e" where the source wrote "é" as e + U+0301).
 * Only a cluster longer than `max` alone (hundreds of stacked marks) is cut by code point instead.
 * Every cut of text that is stored or shown goes through here.
 */
export function clipUnits(text: string, max: number): string {
  if (text.length <= max) return text;
  // Whether `max` is a boundary depends on the code point after it (two units at most) and on what
  // comes before, never on anything later: segmenting this prefix finds the same boundaries.
  let cut = 0;
  for (const { index, segment } of GRAPHEMES.segment(text.slice(0, max + 2))) {
    if (index + segment.length > max) break;
    cut = index + segment.length;
  }
  if (cut > 0) return text.slice(0, cut);
  const last = text.charCodeAt(max - 1);
  return text.slice(0, last >= 0xd800 && last <= 0xdbff ? max - 1 : max);
}

/** Created once: building a segmenter costs far more than segmenting a short text. */
const GRAPHEMES = new Intl.Segmenter(undefined, { granularity: 'grapheme' });

/**
 * Text a message quotes back (a client's value, a name from an upload): its first `max` UTF-16
 * units, cut by clipUnits (never half an emoji: a lone surrogate in an answer is shown as U+FFFD
 * or refused by a strict JSON reader), with `…` when something was cut.
 */
export function excerpt(text: string, max: number): string {
  return text.length <= max ? text : `${clipUnits(text, max)}…`;
}
