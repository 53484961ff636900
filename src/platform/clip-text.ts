import { clipUnits } from '../domain/text-length.js';

/**
 * `text` at most `max` UTF-16 units long (so at most `max` characters too): cut, with `…` as its
 * last character, where it is longer. For stored error texts (a delivery's lastError, a source's
 * syncError), which are shown whole.
 */
export function clipText(text: string, max: number): string {
  return text.length <= max ? text : `${clipUnits(text, max - 1)}…`;
}

/** Control characters (C0, C1) and bidirectional overrides: what a terminal or a log viewer may act on. */
const CONTROLS = /[\p{Cc}\u202A-\u202E\u2066-\u2069]/gu;

/**
 * Client-controlled text for a log line: clipped as clipText does, and every control character
 * (C1 included, which JSON leaves as it is and a terminal may take for an escape: U+009B is CSI)
 * shown as `?`.
 */
export function loggedText(text: string, max: number): string {
  return clipText(text.replace(CONTROLS, '?'), max);
}
