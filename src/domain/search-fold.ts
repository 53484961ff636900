/**
 * How catalogue search compares text. The stored `CatalogApp.searchText` and a search as typed both
 * go through searchFold, and nothing else folds either, so the two can never be folded two ways: a
 * search matches where its folded text is a substring of the app's folded text (db/list-sql.ts's
 * LIKE, escaped after folding, so a `%` that folding produces, from a full-width `％`, is a `%`).
 */

/** Combining marks (accents, a Turkish İ's dot once decomposed) and format characters (U+200B, U+200D, U+FEFF, a soft hyphen). */
const MARKS_AND_FORMAT = /[\p{M}\p{Cf}]/gu;
/** Letters lower-casing leaves apart from their plain form: the dotless ı, the final sigma ς. */
const LOWER_VARIANTS = /[ıς]/g;
const PLAIN_LOWER: Record<string, string> = { ı: 'i', ς: 'σ' };

/**
 * Text as search compares it, each step for a miss users met:
 * - NFKD: a composed `é` and an `e` + U+0301 become the same, and compatibility forms (full-width
 *   `ｎｅｘｔ`, ligatures, `㎒`) their plain letters, so "café" typed either way and "next" typed
 *   on a CJK keyboard match.
 * - toLowerCase (locale-independent, after NFKD, which can give capitals: `㎒` is `MHz`).
 * - NFKD again: what lower-casing composed (`İ` lower-cases to `i` + U+0307) decomposes too.
 * - Marks dropped: "cafe" finds "Café", "uber" "Über", "istanbul" "İstanbul". The cost is that
 *   search ignores marks in every script (a Japanese `が` matches `か`): broader, never a miss.
 * - Format characters dropped: invisible, typed or pasted inside a word (zero-width space, joiner,
 *   byte-order mark, soft hyphen), they split what the user sees as one word.
 * - ı → i and ς → σ: lower-case forms with no mark to drop. `Σ` lower-cases to `ς` at the end of a
 *   word and to `σ` inside one, so "ΟΔΟΣ" stored was not found by `οδοσ` typed (as a word's start
 *   is typed while the word is not yet ended); a Turkish keyboard types `ı` where others type `i`.
 * - Runs of white space (any Unicode space, a line break) as one space, trimmed: a description's
 *   line break or a doubled space matches a single space typed.
 * Idempotent (folding a folded text changes nothing): a row whose searchText is not a fixed point
 * was stored folded another way (by a release that only lower-cased) and is folded again
 * (services/search-refold.ts); an ASCII row reads the same either way and needs nothing.
 * The result is never longer than NFKD's (at most 18 code points per character, U+FDFA), which
 * bounds a pattern: MAX_SEARCH_LENGTH characters stay far below SQLite's 50,000-byte LIKE limit.
 */
export function searchFold(text: string): string {
  return text
    .normalize('NFKD')
    .toLowerCase()
    .normalize('NFKD')
    .replace(MARKS_AND_FORMAT, '')
    .replace(LOWER_VARIANTS, (letter) => PLAIN_LOWER[letter] ?? letter)
    .replace(/\s+/gu, ' ')
    .trim();
}

/** Whether `text` is stored folded as search compares it (searchFold leaves it as it is). */
export function isSearchFolded(text: string): boolean {
  return searchFold(text) === text;
}
