import { randomBytes } from 'node:crypto';
import { describe, expect, test } from 'vitest';
import { REDACTED, SecretRedactor } from '../src/platform/redact.js';

/** A JWS-shaped value of `length` characters (the longest a buyer may send is 16,384), different every time. */
function bigJws(length = 16_384): string {
  return `eyJ${randomBytes(length).toString('base64url')}`.slice(0, length);
}

/** A 16 KB value no shape rule recognises, so only redaction by value can find it. */
function bigOpaque(): string {
  return randomBytes(8_192).toString('hex');
}

/** Text quoting `part` the way an upstream error does. */
function quoting(part: string): string {
  return `bad credential "${part}" (truncated)`;
}

describe('remembered secrets are bounded in memory', () => {
  test('a long value is indexed by a bounded number of pieces, and its prefix, suffix and inner parts are still redacted', () => {
    const redactor = new SecretRedactor();
    const value = bigOpaque();
    redactor.remember(value);

    // Every 16 characters would be 1,024 pieces; every 256 (16,384 / 64) is 64, plus the last one.
    expect(redactor.rememberedCost).toEqual({ chars: value.length, pieces: 65 });
    expect(redactor.text(quoting(value.slice(0, 16)))).toBe(quoting(REDACTED));
    expect(redactor.text(quoting(value.slice(-16)))).toBe(quoting(REDACTED));
    // Any inner part of 256 + 15 characters holds a whole indexed piece, wherever it starts.
    for (const start of [1, 100, 255, 4_000, 9_999, 16_384 - 271]) {
      expect(redactor.text(quoting(value.slice(start, start + 271)))).toBe(quoting(REDACTED));
    }
    expect(redactor.text(quoting(value.slice(5)))).toBe(quoting(REDACTED));
  });

  test('a value up to 1,024 characters is still indexed every 16, so any inner part of 31 is redacted', () => {
    const redactor = new SecretRedactor();
    const value = `opaque-${randomBytes(600).toString('hex')}`.slice(0, 1_024);
    redactor.remember(value);
    expect(redactor.rememberedCost.pieces).toBe(64);
    for (const start of [1, 17, 500, 1_024 - 31]) {
      expect(redactor.text(quoting(value.slice(start, start + 31)))).toBe(quoting(REDACTED));
    }
  });

  test('remembered values are bounded by their characters in all, the oldest forgotten first', () => {
    const redactor = new SecretRedactor({ maxRememberedChars: 100 });
    const values = ['a'.repeat(40), 'b'.repeat(40), 'c'.repeat(40)].map((run, i) => `${i}-secret-${run}`);
    redactor.remember(...values);
    expect(redactor.remembered).toBe(2);
    expect(redactor.rememberedCost.chars).toBeLessThanOrEqual(100);
    expect(redactor.text(values.join(' '))).toBe(`${values[0]} ${REDACTED} ${REDACTED}`);
  });

  test('the newest value is remembered even when it alone is over the bound', () => {
    const redactor = new SecretRedactor({ maxRememberedChars: 10 });
    redactor.remember('older-secret-value', 'a-much-longer-newer-secret-value');
    expect(redactor.remembered).toBe(1);
    expect(redactor.text('a-much-longer-newer-secret-value')).toBe(REDACTED);
  });

  test('400 different 16 KB signatures (one per signatureCallback) stay within the default bounds, the newest still redacted', () => {
    const redactor = new SecretRedactor();
    let newest = '';
    for (let i = 0; i < 400; i++) {
      newest = bigJws();
      redactor.remember(newest);
    }
    const { chars, pieces } = redactor.rememberedCost;
    // 4,000,000 characters hold 244 of them; each is indexed by 65 pieces, not 1,025.
    expect(chars).toBeLessThanOrEqual(4_000_000);
    expect(redactor.remembered).toBe(244);
    expect(pieces).toBeLessThanOrEqual(244 * 65);
    expect(redactor.text(quoting(newest.slice(1_000, 1_271)))).toBe(quoting(REDACTED));
  });
});
