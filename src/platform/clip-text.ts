/**
 * `text` at most `max` UTF-16 units long (so at most `max` characters too): cut, with `…` as its
 * last character, where it is longer. For stored error texts (a delivery's lastError, a source's
 * syncError), which are shown whole.
 */
export function clipText(text: string, max: number): string {
  if (text.length <= max) return text;
  // Not between the two halves of a surrogate pair: a lone half is not text (PostgreSQL refuses it).
  const end = /[\uD800-\uDBFF]/.test(text.charAt(max - 2)) ? max - 2 : max - 1;
  return `${text.slice(0, end)}…`;
}
