/**
 * `text` at most `max` characters long: cut, with `…` as its last character, where it is longer.
 * For stored error texts (a delivery's lastError, a source's syncError), which are shown whole.
 */
export function clipText(text: string, max: number): string {
  return text.length > max ? `${text.slice(0, max - 1)}…` : text;
}
