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
