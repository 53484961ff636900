import { createHmac, createSecretKey, type KeyObject, timingSafeEqual } from 'node:crypto';

/**
 * The signature of every outbound delivery (payment pushes and webhooks), in Stripe's form:
 * `X-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<body>">`. Signing the timestamp
 * with the body lets a receiver refuse a replayed delivery (an old `t`) as well as a forged one.
 */

export const SIGNATURE_HEADER = 'x-signature';

/** The header value for `body` sent at `timestampS` (unix seconds). */
export function signatureHeader(secret: string, body: string, timestampS: number): string {
  return `t=${timestampS},v1=${hmacHex(secret, timestampS, body)}`;
}

/**
 * Whether `header` is a valid signature of `body` with `secret`, made at most `toleranceS`
 * seconds from `nowS` (a receiver's check; the tests use it, and it documents the format).
 */
export function verifySignature(
  secret: string,
  body: string,
  header: string,
  { nowS = Math.floor(Date.now() / 1000), toleranceS = 300 }: { nowS?: number; toleranceS?: number } = {},
): boolean {
  const parts = new Map(
    header.split(',').map((part) => {
      const at = part.indexOf('=');
      return [part.slice(0, at).trim(), part.slice(at + 1).trim()] as const;
    }),
  );
  const t = Number(parts.get('t'));
  const v1 = parts.get('v1') ?? '';
  if (!Number.isInteger(t) || Math.abs(nowS - t) > toleranceS || !/^[0-9a-f]{64}$/.test(v1)) return false;
  return timingSafeEqual(Buffer.from(v1, 'hex'), Buffer.from(hmacHex(secret, t, body), 'hex'));
}

/**
 * Keys prepared once per secret: preparing a string key is a tenth of the cost of signing a
 * delivery. Few secrets exist (one per webhook, one for payment pushes); the bound only keeps a
 * stream of distinct ones from growing the map without end.
 */
const keys = new Map<string, KeyObject>();
const MAX_KEYS = 1_000;

function hmacHex(secret: string, timestampS: number, body: string): string {
  let key = keys.get(secret);
  if (!key) {
    if (keys.size >= MAX_KEYS) keys.clear();
    key = createSecretKey(Buffer.from(secret, 'utf8'));
    keys.set(secret, key);
  }
  return createHmac('sha256', key).update(`${timestampS}.${body}`).digest('hex');
}
