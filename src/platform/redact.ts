/**
 * Redaction of secrets from text that comes back from upstream services (the app service, the
 * developers' credential services, the chart repo) before it is stored, published or logged.
 * Upstreams quote our own requests back at us ("invalid request {…the whole body…}"), and those
 * requests carry the buyer's credential, secret env values and our service token. Two rules, each
 * covering what the other cannot:
 *
 * - **Known values**: the exact secrets a request carried, and every secret this process sent
 *   upstream lately (`rememberSecret`), so a state event that arrives minutes later quoting the
 *   credential is cleaned too, and for good the configuration's own (`keepSecret`: the proxy's).
 *   Any piece of one that is long enough to matter is redacted as well, because an upstream may
 *   cut a quoted body short (src/platform/known-secrets.ts).
 * - **Shapes**, for secrets whose value we never knew: JWT/JWS (`eyJ….….…`), `Bearer …`, and a
 *   value next to a secret-like name (`"token":"…"`, `password=…`, an env entry
 *   `{"envName":"VERIFIABLE_CREDENTIAL","value":"…"}` in JSON or Go's `%+v`).
 *
 * Imports nothing from the rest of src but known-secrets.ts, so every boundary can use it.
 */

import { KnownValues, MAX_REMEMBERED, MAX_REMEMBERED_CHARS, MIN_KNOWN_LENGTH } from './known-secrets.js';

export const REDACTED = '[redacted]';

/** Deeper JSON than this is not walked but replaced: a hostile upstream must not exhaust the stack. */
const MAX_JSON_DEPTH = 64;

/** Substrings of a name (lower-cased, separators removed) that make it name a secret. */
const SECRET_NAME_PARTS = ['token', 'secret', 'passw', 'pwd', 'credential', 'authoriz', 'signature', 'cookie', 'key'];
/** Whole words that do (too short to match as substrings). */
const SECRET_NAME_WORDS = new Set(['vc', 'jws', 'jwt', 'sig', 'auth', 'pass', 'bearer']);

/**
 * Whether a name (env var, JSON field, header, query parameter) names a secret: *TOKEN*,
 * *SECRET*, *PASSWORD*, *KEY*, *CREDENTIAL*, authorization, signature, vc, jws …
 */
export function isSecretName(name: string): boolean {
  const words = name
    .replace(/([a-z0-9])([A-Z])/g, '$1_$2')
    .toLowerCase()
    .split(/[^a-z0-9]+/)
    .filter(Boolean);
  const joined = words.join('');
  // A field called just "key" is an identifier far more often than a secret.
  if (joined === 'key' || joined === 'keys') return false;
  return SECRET_NAME_PARTS.some((part) => joined.includes(part)) || words.some((word) => SECRET_NAME_WORDS.has(word));
}

export interface EnvLike {
  name: string;
  value?: string | null;
  secret?: boolean | null;
}

/** An env whose value must never be shown back: marked secret, or named like a secret. */
export function isSecretEnv(env: EnvLike): boolean {
  return env.secret === true || isSecretName(env.name);
}

/** The values of the secret envs among `envs`. */
export function secretEnvValues(envs: readonly EnvLike[]): string[] {
  return envs.filter((env) => env.value && isSecretEnv(env)).map((env) => env.value as string);
}

function replaceRanges(text: string, ranges: [number, number][]): string {
  if (ranges.length === 0) return text;
  ranges.sort((a, b) => a[0] - b[0]);
  let out = '';
  let at = 0;
  for (const [start, end] of ranges) {
    if (end <= at) continue;
    out += text.slice(at, Math.max(at, start));
    if (start >= at) out += REDACTED;
    at = end;
  }
  return out + text.slice(at);
}

// ── shapes ───────────────────────────────────────────────────────────────────────────────

/** A JWT/JWS (header `{"` is `eyJ` in base64url), whole or cut short. */
const JWT = /\beyJ[A-Za-z0-9_-]{2,}(?:\.[A-Za-z0-9_-]*){0,2}/g;

/**
 * An HMAC-SHA256 in hex after `v1=`: the outbound deliveries' `X-Signature` (signature.ts), which a
 * receiver may echo in its refusal, in any quoting. Unique to its delivery, so not known by value;
 * with its `t` (whole seconds, easily guessed) the reader could replay that delivery to its
 * receiver. Its `t=` goes with it when it is there.
 */
const DELIVERY_SIGNATURE = /\b(?:t=\d+,\s*)?v1=[0-9a-fA-F]{64}\b/g;

/** An HTTP credential after its scheme. */
const SCHEME_CREDENTIAL = /\b([Bb]earer|Basic)(\s+)(?!\[redacted\])[A-Za-z0-9\-._~+/]+=*/g;

/**
 * A name begins where a run of name characters does (`(?<![\w.-])`, then any digits, dots or
 * dashes before its first letter): without that anchor, the engine tried every position inside a
 * long run of letters, each time scanning to the run's end and back, so the time grew with the
 * square of the run (a 32 k-letter error text from an upstream took 9.6 s, the event loop
 * blocked). A match could only ever start at the run's first letter anyway.
 */
const NAME_START = String.raw`(?<![\w.-])[\d.-]*`;

/** `name` `:`/`=` — the value is read by readValue. Quotes may be escaped (JSON quoted in JSON). */
const NAME_AND_SEPARATOR = new RegExp(
  String.raw`(?:\\?["'])?${NAME_START}([A-Za-z_][\w.-]*)(?:\\?["'])?\s*[:=]\s*`,
  'g',
);

/**
 * A name followed by its value under a `value` key: `"X","value":"…"`, `X Value:…` (Go %+v), `X, value=…`.
 * (`\s*(?:[,;]\s*)?`, not `\s*[,;]?\s*`: two optional runs of spaces side by side split a long run
 * of spaces in every way, again quadratic.)
 */
const NAME_THEN_VALUE = new RegExp(
  String.raw`${NAME_START}([A-Za-z_][\w.-]*)(?:\\?["'])?\s*(?:[,;]\s*)?(?:\\?["'])?value(?:\\?["'])?\s*[:=]\s*`,
  'gi',
);

/** The same pair the other way round: `"value":"…","envName":"X"`. */
const VALUE_THEN_NAME =
  /((?:\\?["'])?value(?:\\?["'])?\s*[:=]\s*)(\\?"[^"]*?\\?"|\\?'[^']*?\\?'|[^\s"',;{}[\]]+)(\s*(?:[,;]\s*)?(?:\\?["'])?(?:env_?name|name|key)(?:\\?["'])?\s*[:=]\s*(?:\\?["'])?)([A-Za-z_][\w.-]*)/gi;

interface ValueSpan {
  end: number;
  /** The opening quote as written (possibly escaped), or '' for a bare or bracketed value. */
  quote: string;
  /** Whether a quoted value has its closing quote (an upstream may have cut it off). */
  closed: boolean;
  /** Whether there is anything between the quotes (or any bare value at all). */
  empty: boolean;
}

/**
 * Where the JSON string opening `rest` ends (just past its closing quote), or -1 if it is cut
 * off: escaped quotes inside it (`\"`, a value holding a quote) do not end it. `nested`: the
 * string is itself quoted inside another JSON string (`\"…\"`), so its escapes are escaped once
 * more: its own quotes are `\\\"`, its end `\"`.
 */
function jsonStringEnd(rest: string, nested: boolean): number {
  const quote = nested ? '\\"' : '"';
  // An escape as written at this level: `\x` in a string, `\\\x` or `\\\\` one level down.
  const escapeAt = nested ? /\\\\(?:\\.|.)/y : /\\./y;
  for (let i = quote.length; i < rest.length; ) {
    if (rest.startsWith(quote, i)) return i + quote.length;
    escapeAt.lastIndex = i;
    i = escapeAt.test(rest) ? escapeAt.lastIndex : i + 1;
  }
  return -1;
}

/** Where a value in single quotes (`'…'` or `\'…\'`) ends, past its closing quote (`'` or `\'`), or -1. */
function quotedEnd(rest: string, quote: string): number {
  const close = /\\?'/g;
  close.lastIndex = quote.length;
  const found = close.exec(rest);
  return found ? found.index + found[0].length : -1;
}

/** The value starting at `start`: a quoted string, a bracketed JSON value, or a bare word. */
function valueAt(text: string, start: number): ValueSpan {
  const rest = text.slice(start);
  const quote = /^\\?(["'])/.exec(rest);
  if (quote) {
    const close = quote[1] === '"' ? jsonStringEnd(rest, quote[0].length === 2) : quotedEnd(rest, quote[0]);
    // A quoted value cut off by the upstream runs to the end of the text.
    if (close === -1)
      return { end: text.length, quote: quote[0], closed: false, empty: rest.length === quote[0].length };
    return { end: start + close, quote: quote[0], closed: true, empty: close === 2 * quote[0].length };
  }
  if (rest[0] === '{' || rest[0] === '[') {
    let depth = 0;
    for (let i = 0; i < rest.length; i++) {
      const c = rest[i];
      if (c === '{' || c === '[') depth++;
      else if (c === '}' || c === ']') depth--;
      if (depth === 0) return { end: start + i + 1, quote: '', closed: true, empty: i === 1 };
    }
    return { end: text.length, quote: '', closed: false, empty: false };
  }
  const bare = /^(?:(?:[Bb]earer|Basic)\s+)?[^\s"',;&{}[\]()<>]*/.exec(rest)?.[0] ?? '';
  return { end: start + bare.length, quote: '', closed: true, empty: bare === '' };
}

/** Whether the value at `start` was redacted already (by value, or as a scheme's credential). */
function alreadyRedacted(text: string, start: number): boolean {
  return /^(?:\\?["'])?(?:(?:[Bb]earer|Basic)\s+)?\[redacted\]/.test(text.slice(start, start + 40));
}

/** Replaces the value after each match of `pattern` whose name (group 1) is a secret's. */
function redactValuesAfter(text: string, pattern: RegExp): string {
  let out = '';
  let at = 0;
  pattern.lastIndex = 0;
  for (let match = pattern.exec(text); match; match = pattern.exec(text)) {
    const start = match.index + match[0].length;
    const name = match[1] as string;
    if (!isSecretName(name) || alreadyRedacted(text, start) || isSourcePosition(name, text, start)) continue;
    const value = valueAt(text, start);
    if (value.empty) continue;
    out += text.slice(at, start) + value.quote + REDACTED + (value.quote && value.closed ? value.quote : '');
    at = value.end;
    pattern.lastIndex = Math.max(value.end, pattern.lastIndex);
  }
  return out + text.slice(at);
}

/**
 * A stack frame's `file.ts:line:column`: a source file named like a secret (credential-polling.ts,
 * token-bucket.js) is no secret's name, and its position is what an incident needs. Only a
 * position is kept (digits, an optional `:column`, then the frame's end): `token.js: abc` is not one.
 */
function isSourcePosition(name: string, text: string, start: number): boolean {
  return /\.[cm]?[jt]sx?$/.test(name) && /^\d+(?::\d+)?(?:\)|\s|$)/.test(text.slice(start, start + 24));
}

function redactShapes(text: string): string {
  let out = text
    .replace(JWT, REDACTED)
    .replace(SCHEME_CREDENTIAL, `$1$2${REDACTED}`)
    .replace(DELIVERY_SIGNATURE, REDACTED);
  out = out.replace(VALUE_THEN_NAME, (whole, before: string, value: string, between: string, name: string) => {
    if (!isSecretName(name) || value.replace(/^\\?["']/, '').startsWith(REDACTED)) return whole;
    const quote = /^\\?["']/.exec(value)?.[0] ?? '';
    return `${before}${quote}${REDACTED}${quote}${between}${name}`;
  });
  out = redactValuesAfter(out, NAME_THEN_VALUE);
  return redactValuesAfter(out, NAME_AND_SEPARATOR);
}

// ── the redactor ─────────────────────────────────────────────────────────────────────────

/** Redacts known secret values and secret-shaped text; `remember` adds values to know. */
export class SecretRedactor {
  private readonly known: KnownValues;
  /** Secrets of the configuration (`keep`): a few, never forgotten however many others come after. */
  private readonly kept = new KnownValues(Number.POSITIVE_INFINITY, Number.POSITIVE_INFINITY);

  constructor(options: { maxRemembered?: number; maxRememberedChars?: number } = {}) {
    this.known = new KnownValues(
      options.maxRemembered ?? MAX_REMEMBERED,
      options.maxRememberedChars ?? MAX_REMEMBERED_CHARS,
    );
  }

  /** Values too short to match safely are ignored (see MIN_KNOWN_LENGTH). */
  remember(...values: (string | null | undefined)[]): void {
    for (const value of values) if (value) this.known.add(value);
  }

  /** Like `remember`, for values known from start to end (the configuration's): never forgotten. */
  keep(...values: (string | null | undefined)[]): void {
    for (const value of values) if (value) this.kept.add(value);
  }

  get remembered(): number {
    return this.known.size;
  }

  /** What the remembered values cost: their characters, and the pieces indexed to find them. */
  get rememberedCost(): { chars: number; pieces: number } {
    return { chars: this.known.chars, pieces: this.known.indexedPieces };
  }

  /** `text` without known secrets (remembered, and the request's own `secrets`) or secret-shaped parts. */
  text(text: string, secrets: readonly (string | null | undefined)[] = []): string {
    if (text === '') return text;
    let ranges = this.known.ranges(text).concat(this.kept.ranges(text));
    const extra = secrets.filter((secret): secret is string => !!secret && secret.length >= MIN_KNOWN_LENGTH);
    if (extra.length) {
      const local = new KnownValues(Number.POSITIVE_INFINITY, Number.POSITIVE_INFINITY);
      for (const secret of extra) local.add(secret);
      ranges = ranges.concat(local.ranges(text));
    }
    return redactShapes(replaceRanges(text, ranges));
  }

  /**
   * A JSON value with every string redacted as `text` does, every field named like a secret
   * replaced, and the value of every env entry (`{envName|name, value}`) that names a secret.
   */
  json<T>(value: T, secrets: readonly (string | null | undefined)[] = []): T {
    return this.walk(value, secrets, 0) as T;
  }

  private walk(value: unknown, secrets: readonly (string | null | undefined)[], depth: number): unknown {
    if (typeof value === 'string') return this.text(value, secrets);
    if (value === null || typeof value !== 'object') return value;
    if (depth >= MAX_JSON_DEPTH) return REDACTED;
    if (Array.isArray(value)) return value.map((item) => this.walk(item, secrets, depth + 1));
    const record = value as Record<string, unknown>;
    const entryName = [record.envName, record.name, record.key].find((name) => typeof name === 'string') as
      | string
      | undefined;
    const secretEntry = entryName !== undefined && isSecretName(entryName);
    const copy: Record<string, unknown> = {};
    for (const [key, field] of Object.entries(record)) {
      const hidden = (isSecretName(key) || (secretEntry && key.toLowerCase() === 'value')) && isShown(field);
      copy[this.text(key, secrets)] = hidden ? REDACTED : this.walk(field, secrets, depth + 1);
    }
    return copy;
  }
}

/** Null, booleans and empty strings say nothing about a secret; any other value may be one. */
function isShown(value: unknown): boolean {
  return value !== null && value !== undefined && typeof value !== 'boolean' && value !== '';
}

/** The process's redactor: what one boundary sent upstream is redacted wherever upstream text comes back. */
const upstream = new SecretRedactor();

/** Remembers secrets this process sends upstream (credentials, secret envs, tokens), for later redaction. */
export function rememberSecret(...values: (string | null | undefined)[]): void {
  upstream.remember(...values);
}

/** Remembers secrets of the configuration for good: the bound on remembered ones never drops them. */
export function keepSecret(...values: (string | null | undefined)[]): void {
  upstream.keep(...values);
}

/** Upstream text without secrets: the remembered ones, `secrets` (the request's own) and secret shapes. */
export function redactSecrets(text: string, secrets: readonly (string | null | undefined)[] = []): string {
  return upstream.text(text, secrets);
}

/** Upstream JSON without secrets (see SecretRedactor.json). */
export function redactSecretsIn<T>(value: T, secrets: readonly (string | null | undefined)[] = []): T {
  return upstream.json(value, secrets);
}

/** Host and port of a URL, never its user or password (`unreadable` when it does not parse). */
export function hostOf(url: string, unreadable = 'an unreadable URL'): string {
  try {
    return new URL(url).host;
  } catch {
    return unreadable;
  }
}
