/**
 * How much work JSON.parse would do on a text, found without parsing it. JSON.parse runs on the
 * main thread and cannot be interrupted, and its cost grows with the values it creates far more
 * than with the bytes: 32 MB of `{},{},…` (11 million objects) blocked the event loop for 39 s
 * and took 736 MB of heap, where 32 MB of real catalogue text parses in a fraction of a second.
 * An upstream's answer is counted first and refused above a bound (outbound-http.ts).
 */

const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const COMMA = 0x2c;
const COLON = 0x3a;
const OPEN_BRACE = 0x7b;
const OPEN_BRACKET = 0x5b;
const CLOSE_BRACE = 0x7d;
const CLOSE_BRACKET = 0x5d;
const SPACE = 0x20;
const TAB = 0x09;
const LF = 0x0a;
const CR = 0x0d;

/**
 * Whether `bytes` may hold more than `max` JSON values (as countJsonValues counts them), counted
 * only when its length leaves room for that. In valid JSON every value but the outermost has a
 * byte before it (`,` `:` or the bracket opening its container, for its first item only) and a
 * last byte (a digit, a letter, a quote, its own closing bracket), all distinct: n values take at
 * least 2n − 1 bytes. Text shorter than 2 × `max` bytes is left to JSON.parse, which reads invalid
 * text at about the same cost per byte: the answers of a 500-app sync (4.2 MB: its index and five
 * detail batches, each under 1 MB) are then not scanned at all.
 */
export function holdsMoreJsonValues(bytes: Buffer, max: number): boolean {
  return bytes.length >= 2 * max && countJsonValues(bytes, max) > max;
}

/**
 * The JSON values in `bytes` (UTF-8 JSON text), member names counted as values: every one but
 * the first follows a `,`, a `:` or the `[`/`{` that opens a non-empty container. Counting stops
 * once it exceeds `stopAbove`, so a refusal costs no more than reaching the bound. For text that
 * is not JSON the count means little, and JSON.parse refuses it anyway.
 *
 * In UTF-8 the bytes looked at (`"`, `\`, brackets, `,`, `:`) never occur inside a multi-byte
 * character, so the bytes are scanned as they came, before they are decoded. A string is skipped
 * with Buffer.indexOf (memchr): real answers are mostly strings, and the loop visits only the
 * bytes between them.
 */
export function countJsonValues(bytes: Buffer, stopAbove: number): number {
  let count = 1;
  const end = bytes.length;
  for (let i = 0; i < end; i++) {
    const byte = bytes[i];
    if (byte === QUOTE) {
      i = closingQuote(bytes, i + 1);
      if (i < 0) return count;
    } else if (byte === COMMA || byte === COLON) {
      if (++count > stopAbove) return count;
    } else if (byte === OPEN_BRACE || byte === OPEN_BRACKET) {
      if (!closesAt(bytes, i + 1) && ++count > stopAbove) return count;
    }
  }
  return count;
}

/** The index of the `"` that ends a string whose text starts at `from`, or -1 for none. */
function closingQuote(bytes: Buffer, from: number): number {
  for (let at = bytes.indexOf(QUOTE, from); at >= 0; at = bytes.indexOf(QUOTE, at + 1)) {
    // Escaped when an odd number of backslashes precede it.
    let backslashes = 0;
    while (bytes[at - 1 - backslashes] === BACKSLASH) backslashes++;
    if (backslashes % 2 === 0) return at;
  }
  return -1;
}

/** Whether the container opened just before `from` is empty (`{}`, `[ ]`). */
function closesAt(bytes: Buffer, from: number): boolean {
  let i = from;
  for (let byte = bytes[i]; byte === SPACE || byte === LF || byte === CR || byte === TAB; byte = bytes[++i]);
  const byte = bytes[i];
  return byte === CLOSE_BRACE || byte === CLOSE_BRACKET;
}
