/**
 * The secret values the redactor knows (src/platform/redact.ts) and where they occur in a text:
 * each value in the forms it may be quoted in, indexed by pieces so that a quote an upstream cut
 * short is found too, within bounds of count, characters and pieces per value. Imports nothing.
 */

/**
 * Shorter values are not remembered or matched by value: redacting every "1234" in a message
 * would garble it, and such a value is still caught by shape when it is quoted next to its name.
 */
export const MIN_KNOWN_LENGTH = 6;

/**
 * Any run of at least this many characters of a known secret is redacted (aligned pieces are
 * indexed, so a cut-off prefix or suffix of 16+ characters and any inner piece of 31+ are found;
 * in a value over 1,024 characters, inner pieces of a 64th of its length + 15: MAX_PIECES_PER_VALUE).
 */
const KNOWN_PIECE = 16;

/**
 * Pieces indexed per value at most: a longer value is indexed every `length / 64` characters
 * instead of every 16 (see piecesOf), so its prefix and suffix of 16+ characters are still found,
 * and any inner part of `length / 64 + 15` characters. Indexing every 16 characters cost ~300 KB
 * of heap per 16 KB value (a buyer's JWS may be that long, and every signatureCallback sends a
 * new one), and as much work to index and to forget.
 */
const MAX_PIECES_PER_VALUE = 64;

/** Secrets this process remembers; the oldest are forgotten first. Bounds memory and index size. */
export const MAX_REMEMBERED = 2_000;

/**
 * Characters of remembered secrets in all; the oldest are forgotten first. Real values are a few
 * KB at most, so with them the count above is what binds; this bounds the worst case (2,000
 * values of 16 KB, each in up to four forms). Measured, 2,000 different 16 KB JWSs remembered
 * (heap after a full GC): 588 MB of heap and 6.6 s of CPU before these two bounds, 8.8 MB (244
 * values kept) and 0.9 s with them.
 */
export const MAX_REMEMBERED_CHARS = 4_000_000;

interface Piece {
  secret: string;
  offset: number;
}

/** Known secret values, indexed by aligned pieces of KNOWN_PIECE characters. */
export class KnownValues {
  /** Insertion order is age: the first is forgotten first. */
  private readonly values = new Set<string>();
  /** Values shorter than KNOWN_PIECE, matched whole. */
  private readonly short = new Set<string>();
  private readonly pieces = new Map<string, Piece[]>();
  private totalChars = 0;

  constructor(
    private readonly max: number,
    private readonly maxChars: number,
  ) {}

  get size(): number {
    return this.values.size;
  }

  get chars(): number {
    return this.totalChars;
  }

  get indexedPieces(): number {
    return this.pieces.size;
  }

  add(value: string): void {
    for (const form of formsOf(value)) {
      if (this.values.has(form)) {
        // Seen again: it is recent now.
        this.values.delete(form);
        this.values.add(form);
        continue;
      }
      this.values.add(form);
      this.totalChars += form.length;
      if (form.length < KNOWN_PIECE) this.short.add(form);
      else
        for (const [piece, offset] of piecesOf(form))
          this.pieces.set(piece, [...(this.pieces.get(piece) ?? []), { secret: form, offset }]);
      // The newest is kept even alone over the bound: forgetting what was just sent would defeat the purpose.
      while (this.values.size > 1 && (this.values.size > this.max || this.totalChars > this.maxChars)) {
        this.forget(this.values.values().next().value as string);
      }
    }
  }

  private forget(value: string): void {
    this.values.delete(value);
    this.totalChars -= value.length;
    this.short.delete(value);
    for (const [piece] of piecesOf(value)) {
      const left = (this.pieces.get(piece) ?? []).filter((entry) => entry.secret !== value);
      if (left.length) this.pieces.set(piece, left);
      else this.pieces.delete(piece);
    }
  }

  /** Character ranges of `text` that are (pieces of) known values. */
  ranges(text: string): [number, number][] {
    const ranges: [number, number][] = [];
    for (const value of this.short) {
      for (let at = text.indexOf(value); at !== -1; at = text.indexOf(value, at + value.length)) {
        ranges.push([at, at + value.length]);
      }
    }
    if (this.pieces.size === 0) return ranges;
    for (let i = 0; i + KNOWN_PIECE <= text.length; i++) {
      for (const { secret, offset } of this.pieces.get(text.slice(i, i + KNOWN_PIECE)) ?? []) {
        // Grow the match both ways for as long as text and secret agree.
        let start = i;
        let from = offset;
        while (start > 0 && from > 0 && text[start - 1] === secret[from - 1]) {
          start--;
          from--;
        }
        let end = i + KNOWN_PIECE;
        let to = offset + KNOWN_PIECE;
        while (end < text.length && to < secret.length && text[end] === secret[to]) {
          end++;
          to++;
        }
        ranges.push([start, end]);
      }
    }
    return ranges;
  }
}

/**
 * The value as it may appear in text: as is, JSON-escaped, JSON-escaped as Go writes it (its
 * encoding/json escapes `<`, `>`, `&`, U+2028 and U+2029 as `\u003c` …, and the app service is
 * written in Go), URL-encoded.
 */
function formsOf(value: string): string[] {
  if (value.length < MIN_KNOWN_LENGTH) return [];
  const json = JSON.stringify(value).slice(1, -1);
  const goJson = json.replace(/[<>&\u2028\u2029]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
  return [...new Set([value, json, goJson, encodeURIComponent(value)])];
}

/**
 * Pieces of KNOWN_PIECE characters, one every `stride` characters plus the last ones, with their
 * offsets: at most MAX_PIECES_PER_VALUE + 1. A run of `stride + KNOWN_PIECE - 1` characters of the
 * value holds a whole aligned piece, so it is found.
 */
function piecesOf(value: string): [string, number][] {
  const stride = Math.max(KNOWN_PIECE, Math.ceil(value.length / MAX_PIECES_PER_VALUE));
  const pieces: [string, number][] = [];
  for (let offset = 0; offset + KNOWN_PIECE <= value.length; offset += stride) {
    pieces.push([value.slice(offset, offset + KNOWN_PIECE), offset]);
  }
  const last = value.length - KNOWN_PIECE;
  if (last % stride !== 0) pieces.push([value.slice(last), last]);
  return pieces;
}
